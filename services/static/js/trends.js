// Trend charts of the chosen district or subdistrict, drawn as inline SVG from the recorded
// history (/v1/history): coverage share, open alerts, available stations.
"use strict";
window.WS = window.WS || {};

WS.trends = (() => {
  const { t, number } = WS.i18n;
  const SVG = "http://www.w3.org/2000/svg";
  const WIDTH = 300, HEIGHT = 56, PAD = 3;
  const SERIES = [
    { key: "coverage", value: (p) => p.coverage_pct, digits: 1, unit: "%" },
    { key: "openAlerts", value: (p) => p.open_alerts, digits: 0, unit: "" },
    { key: "availableStations", value: (p) => p.stations_by_state.available, digits: 0, unit: "" },
  ];
  let range = "24h", area = { district: "", sub: "" }, last = null;
  const $ = (id) => document.getElementById(id);

  function svgEl(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    return node;
  }

  function chart(series, points) {
    const figure = document.createElement("figure");
    figure.className = "trend";
    figure.dataset.series = series.key;
    const values = points.map(series.value);
    const latest = values.length ? `${number(values[values.length - 1], series.digits)}${series.unit}` : "–";
    const caption = document.createElement("figcaption");
    caption.textContent = t("labelValue", { label: t(`trend_${series.key}`), value: latest });
    const svg = svgEl("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": caption.textContent });
    svg.dataset.points = String(values.length);
    if (values.length) {
      const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
      const times = points.map((p) => Date.parse(p.at));
      const t0 = times[0], tspan = times[times.length - 1] - t0 || 1;
      const xy = values.map((v, i) => [
        PAD + ((times[i] - t0) / tspan) * (WIDTH - 2 * PAD),
        HEIGHT - PAD - ((v - lo) / span) * (HEIGHT - 2 * PAD),
      ]);
      svg.append(svgEl("polyline", {
        points: xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "),
        fill: "none", stroke: "#16324f", "stroke-width": 1.5,
      }));
    }
    figure.append(caption, svg);
    return figure;
  }

  function render() {
    const box = $("trend-charts");
    box.replaceChildren();
    for (const button of document.querySelectorAll("#trend-ranges button")) {
      button.setAttribute("aria-pressed", String(button.dataset.range === range));
      button.textContent = t(`range_${button.dataset.range}`);
    }
    if (!area.district) {
      box.append(Object.assign(document.createElement("p"), { className: "muted", textContent: t("trendsPickDistrict") }));
      return;
    }
    if (!last) return;
    if (!last.points.length) {
      box.append(Object.assign(document.createElement("p"), { className: "muted", textContent: t("trendsNone") }));
    }
    for (const series of SERIES) box.append(chart(series, last.points));
    box.dataset.range = range;
    box.dataset.points = String(last.points.length);
  }

  async function load(district, sub) {
    area = { district, sub };
    last = null;
    if (district) {
      try {
        last = await WS.api.get("/v1/history", { district, subdistrict: sub, range });
      } catch (_) {
        last = { points: [] };
      }
    }
    render();
  }

  function setup() {
    for (const button of document.querySelectorAll("#trend-ranges button")) {
      button.addEventListener("click", () => { range = button.dataset.range; load(area.district, area.sub); });
    }
  }

  return { load, render, setup };
})();
