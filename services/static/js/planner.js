// The planner workbench: ranked gaps with exports, siting suggestions on the map, and a
// what-if panel whose diff follows every click. Signs in with the same key storage as the
// dashboard, so a planner signed in there is signed in here.
"use strict";

(() => {
  const KEY_STORAGE = "waystation.key";
  const LANG_STORAGE = "waystation.lang";
  const WHATIF_DELAY_MS = 300;
  const GAP_ROWS = 20;
  const COLOURS = { available: "#009e73", degraded: "#e69f00", closed: "#d55e00", silent: "#cc79a7", lost: "#d55e00", gained: "#009e73", catchment: "#0072b2" };

  const TEXT = {
    "zh-CN": {
      title: "规划工作台", district: "区", dashboard: "覆盖看板", gaps: "服务缺口", printable: "打印版报告",
      zone: "片区", uncovered: "未覆盖需求", alert: "告警", siting: "新驿站选址", k: "新增数量",
      objective: "目标", objCoverage: "覆盖最多需求", objSetCover: "达到覆盖率所需最少站点",
      objAccess: "可达性最高", targetShare: "目标覆盖率", network: "网络",
      netLive: "实时(只算正常开放的驿站)", netFull: "全部驿站开放", travel: "出行方式",
      travelDefault: "默认", walk: "步行", ebike: "电动车", seats: "座位数",
      candidates: "候选地址文件(可选, CSV/GeoJSON)", suggest: "给出建议", whatif: "假设分析",
      whatifHelp: "点击驿站切换关闭;点击地图空白处添加新站点。", scenarioName: "方案名称",
      save: "保存方案", reset: "清空", signIn: "登录", apiKey: "规划人员 API 密钥",
      badKey: "密钥无效,或不是规划人员/管理员密钥。", solving: "计算中…",
      picked: "{n} 个建议站点,覆盖率 {before}% → {after}%", yes: "是", no: "否",
      closeStation: "关闭 {id}", newSite: "新站点 {id}", gained: "新增覆盖网格", lost: "失去覆盖网格",
      demandGained: "新增覆盖需求(人)", demandLost: "失去覆盖需求(人)",
      underserved: "未覆盖需求合计(人)", becoming: "变为服务不足的片区", clearing: "不再服务不足的片区",
      saved: "已保存为方案 {id}", noChanges: "尚无改动", adds: "增加 {n}",
    },
    en: {
      title: "Planner workbench", district: "District", dashboard: "Coverage dashboard", gaps: "Gaps",
      printable: "Printable report", zone: "Zone", uncovered: "Uncovered demand", alert: "Alert",
      siting: "Siting new stations", k: "How many", objective: "Objective",
      objCoverage: "Cover the most demand", objSetCover: "Fewest sites for a target share",
      objAccess: "Most access", targetShare: "Target share", network: "Network",
      netLive: "Live (working stations only)", netFull: "Every station open", travel: "Travel mode",
      travelDefault: "Default", walk: "Walking", ebike: "E-bike", seats: "Seats",
      candidates: "Candidate sites file (optional, CSV/GeoJSON)", suggest: "Suggest sites",
      whatif: "What-if", whatifHelp: "Click a station to toggle it closed; click the map to add a site.",
      scenarioName: "Scenario name", save: "Save scenario", reset: "Clear", signIn: "Sign in",
      apiKey: "Planner API key", badKey: "The key is invalid, or not a planner or admin key.",
      solving: "Solving…", picked: "{n} sites suggested, coverage {before}% → {after}%", yes: "yes",
      no: "no", closeStation: "Close {id}", newSite: "New site {id}", gained: "Cells gained",
      lost: "Cells lost", demandGained: "Demand gained (workers)", demandLost: "Demand lost (workers)",
      underserved: "Underserved demand (workers)", becoming: "Zones becoming underserved",
      clearing: "Zones no longer underserved", saved: "Saved as scenario {id}", noChanges: "No changes yet",
      adds: "adds {n}",
    },
  };

  let lang = localStorage.getItem(LANG_STORAGE) || "zh-CN";
  const t = (name, values) => (TEXT[lang][name] || name).replace(/\{(\w+)\}/g, (_, k) => values[k]);
  const $ = (selector) => document.querySelector(selector);

  function translate() {
    document.documentElement.lang = lang;
    for (const element of document.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
    $("#lang-toggle").textContent = lang === "zh-CN" ? "English" : "中文";
  }

  // --- the API --------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, body) {
      const fields = (body.errors || []).map((e) => `${e.field}: ${e.reason}`).join("; ");
      super(fields || body.detail || `HTTP ${status}`);
      this.status = status;
    }
  }

  async function call(method, path, { params, json, body, type } = {}) {
    const url = new URL(path, location.origin);
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
    }
    const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY_STORAGE)}` };
    if (json !== undefined) headers["Content-Type"] = "application/json";
    if (type) headers["Content-Type"] = type;
    const response = await fetch(url, { method, headers, body: json !== undefined ? JSON.stringify(json) : body });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, answer);
    return answer;
  }

  // --- state ----------------------------------------------------------------------------
  const state = { district: null, stations: new Map(), closed: new Set(), sites: [], timer: null, sited: null };
  let map, stationLayer, sitingLayer, diffLayer, whatifLayer;

  function hexagon(cell, style) {
    return L.polygon(h3.cellToBoundary(cell), { weight: 1, ...style });
  }

  // --- gaps and exports -----------------------------------------------------------------
  async function loadGaps() {
    const report = await call("GET", "/v1/reports/gaps", { params: { district: state.district, limit: GAP_ROWS } });
    const body = $("#gap-table tbody");
    body.replaceChildren();
    report.zones.forEach((zone, i) => {
      const row = document.createElement("tr");
      row.dataset.zone = zone.zone;
      for (const text of [i + 1, zone.zone.split("/").pop(), zone.uncovered_demand_workers.toFixed(1), zone.alert_open ? t("yes") : t("no")]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      body.append(row);
    });
  }

  async function exportReport(format) {
    const link = await call("POST", "/v1/planning/report-links", { json: { format, lang, district: state.district } });
    if (format === "html") {
      window.open(link.url, "_blank", "noopener");
      return;
    }
    const anchor = document.createElement("a");
    anchor.href = link.url;
    anchor.download = `gaps-${state.district || "city"}.${format}`;
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
  }

  // --- stations and the what-if ---------------------------------------------------------
  async function loadStations() {
    const list = await call("GET", "/v1/stations", { params: { district: state.district, limit: 5000 } });
    stationLayer.clearLayers();
    state.stations.clear();
    for (const view of list.stations) {
      const station = view.station;
      const marker = L.circleMarker([station.lat, station.lon], {
        radius: 5, weight: 1, color: "#fff", fillOpacity: 0.9, fillColor: COLOURS[view.state],
      });
      marker.bindTooltip(`${station.station_id} ${station.name} (${view.state})`);
      marker.on("click", (event) => {
        L.DomEvent.stopPropagation(event);
        toggleClosed(station.station_id);
      });
      marker.addTo(stationLayer);
      state.stations.set(station.station_id, { view, marker });
    }
  }

  function toggleClosed(stationId) {
    const known = state.stations.get(stationId);
    if (state.closed.has(stationId)) {
      state.closed.delete(stationId);
      known.marker.setStyle({ color: "#fff", weight: 1 });
    } else {
      state.closed.add(stationId);
      known.marker.setStyle({ color: "#000", weight: 3 });
    }
    scheduleWhatif();
  }

  function addSite(latlng) {
    const seats = Number(new FormData($("#siting-form")).get("seats")) || 8;
    const site = { site_id: `site-${state.sites.length + 1}`, lat: latlng.lat, lon: latlng.lng, seats };
    state.sites.push(site);
    L.marker(latlng, { icon: L.divIcon({ className: "site-marker new-site", html: "+", iconSize: [20, 20] }) }).addTo(whatifLayer);
    scheduleWhatif();
  }

  function changes() {
    return { close: [...state.closed], open_sites: state.sites };
  }

  function listChanges() {
    const list = $("#whatif-changes");
    list.replaceChildren();
    const items = [...[...state.closed].map((id) => t("closeStation", { id })), ...state.sites.map((s) => t("newSite", { id: s.site_id }))];
    for (const text of items.length ? items : [t("noChanges")]) {
      const item = document.createElement("li");
      item.textContent = text;
      list.append(item);
    }
  }

  function scheduleWhatif() {
    listChanges();
    clearTimeout(state.timer);
    state.timer = setTimeout(runWhatif, WHATIF_DELAY_MS);
  }

  async function runWhatif(name) {
    diffLayer.clearLayers();
    const out = $("#whatif-diff");
    if (!state.closed.size && !state.sites.length) {
      out.replaceChildren();
      return null;
    }
    try {
      const diff = await call("POST", "/v1/planning/whatif", { json: { district: state.district, changes: changes(), name: name || null } });
      for (const cell of diff.cells_lost) hexagon(cell, { color: COLOURS.lost, fillOpacity: 0.5 }).addTo(diffLayer);
      for (const cell of diff.cells_gained) hexagon(cell, { color: COLOURS.gained, fillOpacity: 0.5 }).addTo(diffLayer);
      const facts = [
        [t("gained"), diff.cells_gained.length], [t("lost"), diff.cells_lost.length],
        [t("demandGained"), diff.demand_gained_workers.toFixed(1)], [t("demandLost"), diff.demand_lost_workers.toFixed(1)],
        [t("underserved"), `${diff.underserved_demand_before_workers.toFixed(1)} → ${diff.underserved_demand_after_workers.toFixed(1)}`],
        [t("becoming"), diff.zones_becoming_underserved.map((z) => z.split("/").pop()).join(", ") || "–"],
        [t("clearing"), diff.zones_no_longer_underserved.map((z) => z.split("/").pop()).join(", ") || "–"],
      ];
      const list = document.createElement("dl");
      list.id = "diff-facts";
      for (const [label, value] of facts) {
        const term = document.createElement("dt");
        term.textContent = label;
        const data = document.createElement("dd");
        data.textContent = value;
        list.append(term, data);
      }
      out.replaceChildren(list);
      document.body.dataset.whatif = String(diff.cells_lost.length + diff.cells_gained.length);
      return diff;
    } catch (error) {
      out.textContent = error.message;
      return null;
    }
  }

  // --- siting ---------------------------------------------------------------------------
  async function suggest(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    const status = $("#siting-status");
    status.textContent = t("solving");
    sitingLayer.clearLayers();
    $("#siting-results").replaceChildren();
    const request = {
      district: state.district,
      k: Number(form.get("k")),
      objective: form.get("objective"),
      target_share: Number(form.get("target_share")),
      network: form.get("network"),
      seats: Number(form.get("seats")),
    };
    if (form.get("travel_mode")) request.travel_mode = form.get("travel_mode");
    try {
      const file = form.get("candidates");
      if (file && file.size) {
        const read = await call("POST", "/v1/planning/candidates", { body: await file.text(), type: "text/csv" });
        request.candidates = read.candidates;
      }
      state.sited = await call("POST", "/v1/planning/sites", { json: request });
      showSites(state.sited);
    } catch (error) {
      status.textContent = error.message;
    }
  }

  function showSites(answer) {
    const status = $("#siting-status");
    sitingLayer.clearLayers();
    $("#siting-results").replaceChildren();
    const before = answer.demand_workers ? (100 * answer.demand_covered_before_workers / answer.demand_workers).toFixed(1) : "0";
    const after = answer.picks.length ? answer.picks[answer.picks.length - 1].cumulative_demand_covered_pct.toFixed(1) : before;
    status.textContent = t("picked", { n: answer.picks.length, before, after });
    for (const pick of answer.picks) {
      for (const cell of pick.catchment_cells) hexagon(cell, { color: COLOURS.catchment, fillOpacity: 0.12, weight: 0 }).addTo(sitingLayer);
      L.marker([pick.lat, pick.lon], {
        icon: L.divIcon({ className: "site-marker", html: String(pick.rank), iconSize: [22, 22] }),
        title: `${pick.rank}. ${pick.name || pick.site_id}`,
      }).addTo(sitingLayer);
      const item = document.createElement("li");
      item.textContent = `${pick.name || pick.site_id} — ${t("adds", { n: pick.added.toFixed(1) })} (${pick.cumulative_demand_covered_pct.toFixed(1)}%)`;
      $("#siting-results").append(item);
    }
    document.body.dataset.sited = String(answer.picks.length);
  }

  // --- start ----------------------------------------------------------------------------
  async function loadDistrict() {
    const outlines = await call("GET", "/v1/boundaries", { params: { district: state.district } });
    const outline = L.geoJSON(outlines, { style: { color: "#555", weight: 1, fill: false } });
    outline.addTo(map);
    if (outline.getBounds().isValid()) map.fitBounds(outline.getBounds());
    await Promise.all([loadStations(), loadGaps()]);
    document.body.dataset.rendered = "true";
  }

  async function start() {
    let me;
    try {
      me = await call("GET", "/v1/me");
    } catch (error) {
      $("#sign-in-error").textContent = error.status === 401 ? t("badKey") : error.message;
      return;
    }
    if (me.role !== "planner" && me.role !== "admin") {
      $("#sign-in-error").textContent = t("badKey");
      return;
    }
    $("#sign-in").hidden = true;
    $("#app").hidden = false;
    const select = $("#district-select");
    select.replaceChildren(...me.districts.map((name) => new Option(name, name)));
    state.district = me.districts[0] || null;
    map = L.map("map", { preferCanvas: true });
    stationLayer = L.layerGroup().addTo(map);
    sitingLayer = L.layerGroup().addTo(map);
    diffLayer = L.layerGroup().addTo(map);
    whatifLayer = L.layerGroup().addTo(map);
    map.on("click", (event) => addSite(event.latlng));
    select.addEventListener("change", async () => {
      state.district = select.value;
      state.closed.clear();
      state.sites = [];
      whatifLayer.clearLayers();
      diffLayer.clearLayers();
      listChanges();
      await loadDistrict();
    });
    listChanges();
    await loadDistrict();
  }

  // For people poking at the page from the console, and for the browser tests.
  window.WSPlanner = { state, map: () => map };

  document.addEventListener("DOMContentLoaded", () => {
    translate();
    $("#lang-toggle").addEventListener("click", () => {
      lang = lang === "zh-CN" ? "en" : "zh-CN";
      localStorage.setItem(LANG_STORAGE, lang);
      translate();
      listChanges();
      if (map) {
        loadGaps();
        runWhatif();
        if (state.sited) showSites(state.sited);
      }
    });
    $("#sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY_STORAGE, $("#api-key").value.trim());
      start();
    });
    $("#siting-form").addEventListener("submit", suggest);
    $("#save-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const diff = await runWhatif(new FormData(event.target).get("name"));
      if (diff && diff.scenario_id) $("#whatif-diff").append(Object.assign(document.createElement("p"), { textContent: t("saved", { id: diff.scenario_id }) }));
    });
    $("#whatif-reset").addEventListener("click", () => {
      for (const id of [...state.closed]) toggleClosed(id);
      state.sites = [];
      whatifLayer.clearLayers();
      scheduleWhatif();
    });
    for (const button of document.querySelectorAll("[data-export]")) {
      button.addEventListener("click", () => exportReport(button.dataset.export).catch((error) => alert(error.message)));
    }
    if (sessionStorage.getItem(KEY_STORAGE)) start();
  });
})();
