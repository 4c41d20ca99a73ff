// The dashboard: sign-in, the map snapshot, live updates on top of it, district and
// subdistrict selection. The model keeps columns (typed arrays) as the API sends them.
"use strict";

(() => {
  const { t } = WS.i18n;
  const { api, layers, panel } = WS;
  const $ = (id) => document.getElementById(id);
  const ALLOWED_ROLES = new Set(["union", "planner", "admin"]);
  const ACTING_ROLES = new Set(["union", "admin"]); // may acknowledge, assign and note
  const STATION_FOCUS_ZOOM = 15;
  const HIT_SLOP_PX = 4;
  const SEVERITY = { closed: 0, degraded: 1, silent: 2, available: 3 };
  const H3_CELL = /^[0-9a-f]{15}$/;

  const model = {
    me: null, district: "", sub: "", seq: 0, states: [], statuses: [], subdistricts: [],
    stations: null, cells: null, breaks: [], alerts: new Map(), handling: new Map(), zones: new Set(), kpis: null,
    boundaries: { type: "FeatureCollection", features: [] },
    cellStyle(i) {
      const status = this.statuses[this.cells.status[i]];
      if (status === "underserved") return layers.UNDERSERVED;
      if (status === "uncovered") return layers.UNCOVERED;
      const a = this.cells.access[i];
      let bucket = 0;
      while (bucket < this.breaks.length && a > this.breaks[bucket]) bucket++;
      return layers.ACCESS_RAMP[bucket];
    },
  };

  let map = null, cellLayer, stationLayer, boundaryLayer, zoneLayer, tourLayer, renderer;
  let live = null, pending = null, wasDown = false, frame = null, popupStation = null;
  let dirty = { panel: false, zones: false, lastStation: null };

  // ---- sign-in ---------------------------------------------------------------------------

  function showSignIn(message) {
    if (live) live.stop();
    live = null;
    WS.alertActions.clear(); // drafts and histories were the last key's
    $("app").hidden = true;
    $("controls").hidden = true;
    $("sign-out").hidden = true;
    $("sample-banner").hidden = true;
    $("sign-in").hidden = false;
    $("sign-in-error").textContent = message || "";
    $("api-key").focus();
  }

  async function signIn(key) {
    try {
      const me = await api.get("/v1/me", null, key);
      if (!ALLOWED_ROLES.has(me.role)) {
        api.key.clear();
        return showSignIn(t("wrongRole"));
      }
      api.key.set(key);
      start(me);
    } catch (error) {
      api.key.clear();
      showSignIn(error.status === 401 ? t("badKey") : error.status === 403 ? t("wrongRole") : t("networkError"));
    }
  }

  function start(me) {
    model.me = me;
    panel.setTimeZone(me.timezone);
    $("sign-in").hidden = true;
    $("api-key").value = "";
    $("app").hidden = false;
    $("controls").hidden = false;
    $("sign-out").hidden = false;
    $("sample-banner").hidden = !me.sample_data;
    setupMap(me);
    fillDistricts();
    const first = me.districts.length === 1 || !me.all_districts ? me.districts[0] || "" : "";
    $("district-select").value = first;
    loadDistrict(first);
  }

  // ---- map -------------------------------------------------------------------------------

  function setupMap(me) {
    if (map) return;
    map = L.map("map", { preferCanvas: true, zoomAnimation: false, zoomSnap: 0.25, minZoom: 3, maxZoom: 18 });
    map.createPane("cells").style.zIndex = 350;
    map.createPane("stations").style.zIndex = 450;
    renderer = L.canvas({ padding: 0.3 });
    if (me.basemap_tile_url) {
      L.tileLayer(me.basemap_tile_url, { attribution: me.basemap_attribution, maxZoom: 19 }).addTo(map);
    }
    map.attributionControl.setPrefix("Leaflet");
    map.setView([39.9, 116.4], 10);
    cellLayer = new layers.CanvasLayer(layers.cellDrawer(model), "cells").addTo(map);
    stationLayer = new layers.CanvasLayer(layers.stationDrawer(model), "stations").addTo(map);
    zoneLayer = L.layerGroup().addTo(map);
    tourLayer = L.layerGroup().addTo(map);
    map.on("click", (e) => onMapClick(e.containerPoint));
    map.on("zoomend", fitLabels);
    map.on("mousemove", (e) => hoverStation(e.containerPoint));
    WS.dashboard = { map, model, tourLayer }; // for tests, benchmarks and curious people at the console
  }

  function view() {
    const zoom = map.getZoom();
    const origin = map.getPixelBounds().min;
    return { zoom, scale: 256 * 2 ** zoom, ox: origin.x, oy: origin.y };
  }

  function nearest(cols, point, radius) {
    if (!cols) return -1;
    const v = view();
    let best = -1, bestD = radius * radius;
    for (let i = 0; i < cols.n; i++) {
      const dx = cols.xs[i] * v.scale - v.ox - point.x, dy = cols.ys[i] * v.scale - v.oy - point.y;
      const d = dx * dx + dy * dy;
      if (d <= bestD) { best = i; bestD = d; }
    }
    return best;
  }

  function onMapClick(point) {
    const station = nearest(model.stations, point, layers.markerSize(map.getZoom()) + HIT_SLOP_PX);
    if (station >= 0) return openStation(station, false);
    const metresPerPx = 40075016.686 * Math.cos((map.getCenter().lat * Math.PI) / 180) / view().scale;
    const cell = nearest(model.cells, point, Math.max(3, 174 / metresPerPx));
    if (cell >= 0) {
      const c = model.cells;
      L.popup().setLatLng(map.containerPointToLatLng(point)).setContent(panel.cellPopup({
        id: c.id[cell], status: model.statuses[c.status[cell]], demand: c.demand[cell], access: c.access[cell],
      })).openOn(map);
    }
  }

  // A station's name (and state) in a tooltip when the pointer is on its marker.
  let hoverTip = null, hovered = -1;
  function hoverStation(point) {
    const i = nearest(model.stations, point, layers.markerSize(map.getZoom()) + HIT_SLOP_PX);
    if (i === hovered) return;
    hovered = i;
    if (hoverTip) { hoverTip.remove(); hoverTip = null; }
    if (i < 0) return;
    const s = model.stations;
    const text = `${s.name[i]} · ${t(`state_${model.states[s.state[i]]}`)}`;
    hoverTip = L.tooltip({ direction: "top", className: "station-tip", offset: [0, -6] })
      .setLatLng([s.lat[i], s.lon[i]]).setContent(text).addTo(map);
    hoverTip.getElement().dataset.station = s.id[i];
  }

  function stationRow(i) {
    const s = model.stations;
    return { index: i, id: s.id[i], name: s.name[i], kind: s.kind[i], state: model.states[s.state[i]] };
  }

  function openStation(i, focus) {
    const s = model.stations;
    const latlng = [s.lat[i], s.lon[i]];
    if (focus) map.setView(latlng, Math.max(map.getZoom(), STATION_FOCUS_ZOOM));
    const id = s.id[i];
    const details = Promise.all([
      api.get(`/v1/stations/${encodeURIComponent(id)}`),
      api.get(`/v1/stations/${encodeURIComponent(id)}/events`, { limit: 5 }),
    ]).then(([stationView, events]) => ({ view: stationView, events: events.events }));
    if (s.kind[i] === "mobile_unit") details.tour = showTour(id); // the bus: its stops and area
    popupStation = i;
    L.popup({ maxWidth: 340, autoPanPadding: [24, 24] }).setLatLng(latlng)
      .setContent(panel.stationPopup(stationRow(i), details)).openOn(map)
      .on("remove", () => { if (popupStation === i) popupStation = null; tourLayer.clearLayers(); });
    if (focus) map.getContainer().querySelector(".leaflet-popup-close-button")?.focus();
  }

  // The area a mobile unit serves now, outlined while its popup is open.
  function showTour(id) {
    return api.get(`/v1/stations/${encodeURIComponent(id)}/tour`).then((tour) => {
      tourLayer.clearLayers();
      const style = { renderer, interactive: false, color: "#0072b2", weight: 1, fillOpacity: 0.15 };
      for (const cell of tour.serving_cells) tourLayer.addLayer(L.polygon(h3.cellToBoundary(cell), style));
      return tour;
    });
  }

  // Names of districts and subdistricts, each shown only at zooms where it fits inside its
  // outline (no basemap needed to tell where a zone is).
  let labelLayer = null;
  const LABEL_CHAR_PX = 13, LABEL_PAD_PX = 12;
  function drawLabels() {
    if (labelLayer) labelLayer.remove();
    labelLayer = L.layerGroup().addTo(map);
    for (const f of model.boundaries.features) {
      if (!f.properties.label_at) continue;
      const bounds = L.geoJSON(f).getBounds();
      const level = f.properties.level;
      const icon = L.divIcon({ className: `area-label area-label-${level}`, html: "<span></span>", iconSize: null });
      const marker = L.marker(f.properties.label_at, { icon, interactive: false, keyboard: false });
      marker.areaBounds = bounds;
      marker.areaName = f.properties.name;
      marker.areaLevel = level;
      labelLayer.addLayer(marker);
    }
    fitLabels();
  }

  function fitLabels() {
    if (!labelLayer) return;
    const zoom = map.getZoom();
    const fitting = (marker) => {
      const nw = map.project(marker.areaBounds.getNorthWest(), zoom);
      const se = map.project(marker.areaBounds.getSouthEast(), zoom);
      return Math.abs(se.x - nw.x) >= marker.areaName.length * LABEL_CHAR_PX + LABEL_PAD_PX;
    };
    const markers = labelLayer.getLayers();
    const subsShown = markers.some((m) => m.areaLevel === "subdistrict" && fitting(m));
    for (const marker of markers) {
      // A district's name gives way to its subdistricts' once those fit.
      const fits = fitting(marker) && (marker.areaLevel !== "district" || !subsShown);
      const el = marker.getElement();
      if (!el) continue;
      el.firstChild.textContent = marker.areaName;
      el.hidden = !fits;
      el.dataset.name = marker.areaName;
      el.dataset.level = marker.areaLevel;
    }
  }

  function drawBoundaries() {
    drawLabels();
    if (boundaryLayer) boundaryLayer.remove();
    boundaryLayer = L.geoJSON(model.boundaries, {
      renderer, interactive: false,
      style: (f) => {
        const chosen = model.sub && f.properties.name === model.sub;
        return f.properties.level === "district"
          ? { color: "#1f1f1f", weight: 2.5, fill: false }
          : { color: chosen ? "#0b5394" : "#555555", weight: chosen ? 3 : 1, dashArray: chosen ? null : "4 4", fill: false };
      },
    }).addTo(map);
  }

  function drawZones() {
    zoneLayer.clearLayers();
    const style = { renderer, interactive: false, color: layers.UNDERSERVED, weight: 3, dashArray: "8 5", fillOpacity: 0.08 };
    for (const zone of model.zones) {
      if (H3_CELL.test(zone)) {
        zoneLayer.addLayer(L.polygon(h3.cellToBoundary(zone), style));
        continue;
      }
      const [parent, name] = zone.includes("/") ? zone.split("/", 2) : [null, zone];
      const feature = model.boundaries.features.find((f) => f.properties.name === name
        && (parent === null || f.properties.parent === parent));
      if (feature) zoneLayer.addLayer(L.geoJSON(feature.geometry, { style: () => style, ...style }));
    }
  }

  function fitTo(features) {
    const outlines = L.geoJSON({ type: "FeatureCollection", features });
    if (outlines.getLayers().length) return map.fitBounds(outlines.getBounds(), { padding: [16, 16] });
    const s = model.stations;
    if (!s || !s.n) return;
    let south = 90, north = -90, west = 180, east = -180;
    for (let i = 0; i < s.n; i++) {
      south = Math.min(south, s.lat[i]); north = Math.max(north, s.lat[i]);
      west = Math.min(west, s.lon[i]); east = Math.max(east, s.lon[i]);
    }
    map.fitBounds([[south, west], [north, east]], { padding: [24, 24] });
  }

  // ---- data ------------------------------------------------------------------------------

  // The id -> row index is built on first use: a city's 200,000 cells need it only once a
  // live update names one, not for the first render.
  function columns(source, extra) {
    const n = source.id.length;
    const { xs, ys } = layers.project(source.lat, source.lon);
    let index = null;
    return {
      ...source, ...extra, n, xs, ys,
      get index() {
        if (!index) {
          index = new Map();
          source.id.forEach((id, i) => index.set(id, i));
        }
        return index;
      },
    };
  }

  function quantileBreaks(cells) {
    const covered = [];
    for (let i = 0; i < cells.n; i++) if (model.statuses[cells.status[i]] === "covered") covered.push(cells.access[i]);
    if (!covered.length) return [];
    const sorted = Float64Array.from(covered).sort();
    const steps = layers.ACCESS_RAMP.length;
    return Array.from({ length: steps - 1 }, (_, k) => sorted[Math.floor(((k + 1) * sorted.length) / steps)]);
  }

  function applySnapshot(s) {
    model.seq = s.seq;
    model.states = s.states;
    model.statuses = s.statuses;
    model.subdistricts = s.subdistricts;
    model.stations = columns(s.stations, { state: Int8Array.from(s.stations.state) });
    model.cells = columns(s.cells, {
      status: Int8Array.from(s.cells.status), access: Float32Array.from(s.cells.access),
      covered: Int8Array.from(s.cells.covered),
    });
    model.breaks = quantileBreaks(model.cells);
    model.alerts = new Map(s.open_alerts.map((a) => [a.alert_id, a]));
    model.handling = new Map(Object.entries(s.alert_handling || {}));
    model.zones = new Set(s.underserved_zones);
    model.kpis = s.kpis;
    showAsOf(s.generated_at);
  }

  let asOf = null;
  function showAsOf(iso) {
    asOf = iso || asOf;
    $("as-of").textContent = asOf ? t("asOf", { time: panel.formatTime(asOf) }) : "";
  }

  function applyUpdate(u) {
    if (u.seq <= model.seq) return; // already in the snapshot
    model.seq = u.seq;
    const s = model.stations, c = model.cells;
    for (const change of u.stations) {
      const i = s.index.get(change.id);
      if (i === undefined) return refresh(false); // a station added since the snapshot
      s.state[i] = change.state;
      dirty.lastStation = `${change.id}:${model.states[change.state]}`;
      if (popupStation === i) dirty.popup = i;
    }
    for (const cell of u.cells) {
      const i = c.index.get(cell.id);
      if (i === undefined) continue;
      c.status[i] = cell.status;
      c.access[i] = cell.access;
      c.covered[i] = cell.covered;
    }
    for (const { alert } of u.alerts) {
      if (alert.status === "open") model.alerts.set(alert.alert_id, alert);
      else model.alerts.delete(alert.alert_id);
      if (alert.kind === "zone_underserved") {
        if (alert.status === "open") model.zones.add(alert.subject);
        else model.zones.delete(alert.subject);
        dirty.zones = true;
      }
    }
    model.kpis = u.kpis;
    dirty.panel = true;
    showAsOf(u.at);
    scheduleRender(u.seq);
  }

  // One frame draws whatever the updates since the last frame changed, then says so on
  // <body> (data-live-seq, data-last-station) for whoever measures or tests the page.
  function scheduleRender(seq) {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = null;
      cellLayer.draw();
      stationLayer.draw();
      if (dirty.zones) drawZones();
      if (dirty.panel) renderPanel();
      if (dirty.popup !== undefined && dirty.popup === popupStation) openStation(dirty.popup, false);
      if (dirty.lastStation) document.body.dataset.lastStation = dirty.lastStation;
      document.body.dataset.liveSeq = String(seq ?? model.seq);
      dirty = { panel: false, zones: false, lastStation: null };
    });
  }

  // ---- the panel -------------------------------------------------------------------------

  function subIndex() {
    return model.sub ? model.subdistricts.indexOf(model.sub) : -1;
  }

  function inScope(alert) {
    if (!model.sub) return true;
    if (alert.kind === "zone_underserved") return alert.subject.split("/").pop() === model.sub;
    const i = model.stations.index.get(alert.subject);
    return i !== undefined && model.stations.subdistrict[i] === subIndex();
  }

  // KPIs of the chosen subdistrict, counted from the map's own data.
  function subdistrictKpis() {
    const k = subIndex(), s = model.stations, c = model.cells;
    const byState = Object.fromEntries(model.states.map((state) => [state, 0]));
    let total = 0, demand = 0, covered = 0;
    for (let i = 0; i < s.n; i++) if (s.subdistrict[i] === k) { byState[model.states[s.state[i]]]++; total++; }
    for (let i = 0; i < c.n; i++) if (c.subdistrict[i] === k) { demand += c.demand[i]; if (c.covered[i]) covered += c.demand[i]; }
    const byKind = Object.fromEntries(Object.keys(model.kpis.open_alerts_by_kind).map((kind) => [kind, 0]));
    for (const alert of model.alerts.values()) if (inScope(alert)) byKind[alert.kind]++;
    return {
      stations_total: total, stations_by_state: byState, demand_workers: demand,
      demand_covered_workers: covered, demand_covered_pct: demand ? (100 * covered) / demand : 0,
      open_alerts_by_kind: byKind, visits_today: model.kpis.visits_today_by_subdistrict[model.sub] || 0,
    };
  }

  function describeAlert(alert) {
    if (alert.kind === "zone_underserved") {
      return { label: H3_CELL.test(alert.subject) ? alert.subject : alert.subject.split("/").pop(), locate: true };
    }
    const i = model.stations.index.get(alert.subject);
    return { label: i === undefined ? alert.subject : `${model.stations.name[i]} (${alert.subject})`, locate: i !== undefined };
  }

  function locateAlert(alert) {
    if (alert.kind !== "zone_underserved") return openStation(model.stations.index.get(alert.subject), true);
    if (H3_CELL.test(alert.subject)) return map.fitBounds(h3.cellToBoundary(alert.subject));
    const name = alert.subject.split("/").pop();
    fitTo(model.boundaries.features.filter((f) => f.properties.name === name));
  }

  const alertPath = (alert, what) => `/v1/alerts/${encodeURIComponent(alert.alert_id)}/${what}`;

  // Acknowledge, assign or note (`what`); the answer is where the alert stands now. An
  // alert resolved meanwhile stays in the feed, saying so, until the live update takes it.
  async function act(alert, what, body) {
    try {
      const done = await api.post(alertPath(alert, what), body);
      model.handling.set(alert.alert_id, done.handling);
      renderPanel();
      return done;
    } catch (error) {
      if (error.status === 401) { api.key.clear(); showSignIn(t("badKey")); }
      throw error;
    }
  }

  const alertIo = { act, history: (alert) => api.get(alertPath(alert, "actions")) };

  function renderPanel() {
    if (!model.kpis) return;
    const scope = model.sub || model.district || t("allDistricts");
    panel.renderKpis(model.sub ? subdistrictKpis() : model.kpis, scope);
    panel.renderAlerts([...model.alerts.values()].filter(inScope), describeAlert, locateAlert, {
      handling: model.handling, mayAct: ACTING_ROLES.has(model.me.role),
      controls: (alert) => WS.alertActions.controlsFor(alert, model.handling.get(alert.alert_id), alertIo),
    });
    WS.alertActions.keepOnly(new Set(model.alerts.keys()));
    const s = model.stations, k = subIndex(), rows = [];
    for (let i = 0; i < s.n; i++) {
      const state = model.states[s.state[i]];
      if (state !== "available" && (k < 0 || s.subdistrict[i] === k)) rows.push({ ...stationRow(i), state });
    }
    rows.sort((a, b) => SEVERITY[a.state] - SEVERITY[b.state] || a.id.localeCompare(b.id));
    panel.renderAttention(rows, (i) => openStation(i, true));
  }

  // ---- districts and loading -------------------------------------------------------------

  function fillDistricts() {
    const select = $("district-select");
    const current = select.value;
    select.replaceChildren();
    if (model.me.all_districts) select.append(new Option(t("allDistricts"), ""));
    for (const name of model.me.districts) select.append(new Option(name, name));
    select.value = current;
  }

  function fillSubdistricts() {
    const select = $("subdistrict-select");
    select.replaceChildren(new Option(t("allSubdistricts"), ""));
    for (const name of model.subdistricts) select.append(new Option(name, name));
    select.value = model.sub;
  }

  function setLiveStatus(state) {
    const status = $("live-status");
    status.dataset.state = state;
    status.textContent = t({ live: "live", reconnecting: "reconnecting", connecting: "connecting", resyncing: "resyncing" }[state] || "live");
  }

  function onLiveState(state) {
    if (state === "unauthorized") {
      api.key.clear();
      return showSignIn(t("badKey"));
    }
    if (state === "live" && wasDown) refresh(false); // updates were missed while away
    wasDown = state === "reconnecting";
    setLiveStatus(state);
  }

  function onLiveMessage(event, data) {
    if (event === "update") {
      if (pending) pending.push(data);
      else applyUpdate(data);
    } else if (event === "handling") {
      model.handling.set(data.alert_id, data);
      dirty.panel = true;
      scheduleRender();
    } else if (event === "resync") {
      setLiveStatus("resyncing");
      refresh(false);
    }
  }

  async function loadDistrict(district) {
    model.district = district;
    model.sub = "";
    if (live) live.stop();
    pending = [];
    setLiveStatus("connecting");
    live = api.stream("/v1/live", { district }, onLiveMessage, onLiveState);
    model.boundaries = await api.get("/v1/boundaries", { district });
    await refresh(true);
  }

  // The stages of a render as performance marks (`dashboard-<name>`), so that a slow first
  // render can be taken apart from outside the page.
  function stage(name) {
    performance.mark(`dashboard-${name}`);
  }

  // Fetch the snapshot; updates arriving meanwhile wait in `pending` and those newer than
  // the snapshot are applied on top.
  async function refresh(fit) {
    if (!pending) pending = [];
    try {
      stage("map-requested");
      const snapshot = await api.get("/v1/map", { district: model.district });
      stage("map-received");
      applySnapshot(snapshot);
      stage("map-decoded");
    } catch (error) {
      pending = null;
      if (error.status === 401) { api.key.clear(); return showSignIn(t("badKey")); }
      throw error;
    }
    const queued = pending;
    pending = null;
    queued.forEach(applyUpdate);
    fillSubdistricts();
    drawBoundaries();
    drawZones();
    if (fit) fitTo(model.boundaries.features.filter((f) => f.properties.level === "district"));
    stage("outlines-drawn");
    cellLayer.draw();
    stage("cells-drawn");
    stationLayer.draw();
    stage("stations-drawn");
    renderPanel();
    stage("panel-filled");
    panel.renderLegend(model.breaks);
    WS.trends.load(model.district, model.sub);
    if (live) setLiveStatus(wasDown ? "reconnecting" : "live");
    requestAnimationFrame(() => {
      document.body.dataset.rendered = "true";
      document.body.dataset.liveSeq = String(model.seq);
      performance.mark("dashboard-rendered");
    });
  }

  // ---- wiring ----------------------------------------------------------------------------

  function updateLanguageButton() {
    const button = $("lang-toggle");
    button.textContent = t("language");
    button.setAttribute("aria-label", t("languageLabel"));
    button.lang = WS.i18n.lang === "en" ? "zh-CN" : "en";
  }

  document.addEventListener("DOMContentLoaded", () => {
    WS.i18n.apply();
    updateLanguageButton();
    $("sign-in-form").addEventListener("submit", (e) => {
      e.preventDefault();
      signIn($("api-key").value.trim());
    });
    $("sign-out").addEventListener("click", () => {
      api.key.clear();
      showSignIn("");
    });
    $("lang-toggle").addEventListener("click", () => {
      WS.i18n.setLang(WS.i18n.lang === "en" ? "zh-CN" : "en");
      updateLanguageButton();
      if (!model.me) return;
      fillDistricts();
      fillSubdistricts();
      setLiveStatus($("live-status").dataset.state || "live");
      showAsOf();
      map.closePopup();
      renderPanel();
      panel.renderLegend(model.breaks);
      WS.trends.render();
    });
    $("district-select").addEventListener("change", (e) => loadDistrict(e.target.value));
    $("subdistrict-select").addEventListener("change", (e) => {
      model.sub = e.target.value;
      drawBoundaries();
      const level = model.sub ? "subdistrict" : "district";
      fitTo(model.boundaries.features.filter((f) => f.properties.level === level
        && (!model.sub || f.properties.name === model.sub)));
      renderPanel();
      WS.trends.load(model.district, model.sub);
    });
    WS.trends.setup();
    const key = api.key.get();
    if (key) signIn(key);
    else showSignIn("");
  });
})();
