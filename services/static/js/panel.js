// The side panel (KPIs, legend, alert feed, stations needing attention) and the popups.
// Everything is built with DOM calls and textContent: no markup from data.
"use strict";
window.WS = window.WS || {};

WS.panel = (() => {
  const { t, number } = WS.i18n;
  const FEED_MAX = 50;
  const ATTENTION_MAX = 40;
  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  let timeZone = "Asia/Shanghai";
  function setTimeZone(zone) { timeZone = zone; }
  function formatTime(iso) {
    if (!iso) return "";
    return new Intl.DateTimeFormat(WS.i18n.lang, {
      timeZone, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    }).format(new Date(iso));
  }

  function renderKpis(k, scopeLabel) {
    $("kpi-scope").textContent = scopeLabel || "";
    $("kpi-stations").textContent = number(k.stations_total);
    $("kpi-covered").textContent = `${number(k.demand_covered_pct, 1)}%`;
    $("kpi-covered-sub").textContent = t("coveredOf", {
      covered: number(k.demand_covered_workers), total: number(k.demand_workers),
    });
    $("kpi-visits").textContent = number(k.visits_today);
    const alertTotal = Object.values(k.open_alerts_by_kind).reduce((a, b) => a + b, 0);
    $("kpi-alerts").textContent = number(alertTotal);
    const states = $("kpi-states");
    states.replaceChildren();
    for (const state of Object.keys(WS.layers.STATE_STYLE)) {
      const item = el("li", `state state-${state}`);
      item.dataset.state = state;
      item.append(WS.layers.swatch(state), el("span", "state-name", t(`state_${state}`)),
        el("span", "state-count", number(k.stations_by_state[state] || 0)));
      states.append(item);
    }
    const kinds = $("kpi-alert-kinds");
    kinds.replaceChildren();
    for (const [kind, count] of Object.entries(k.open_alerts_by_kind)) {
      const item = el("li", count ? "has-alerts" : "");
      item.dataset.kind = kind;
      item.append(el("span", "", t(`kind_${kind}`)), el("span", "state-count", number(count)));
      kinds.append(item);
    }
  }

  function renderLegend(breaks) {
    const legend = $("legend");
    legend.replaceChildren();
    for (const state of Object.keys(WS.layers.STATE_STYLE)) {
      const item = el("li");
      item.append(WS.layers.swatch(state), el("span", "", t(`state_${state}`)));
      legend.append(item);
    }
    const ramp = el("li", "ramp-row");
    const bar = el("span", "ramp");
    WS.layers.ACCESS_RAMP.forEach((_, i) => bar.append(el("span", `ramp-step ramp-${i}`)));
    const range = breaks.length ? ` ${number(breaks[0], 3)}–${number(breaks[breaks.length - 1], 3)}` : "";
    ramp.append(bar, el("span", "", t("cell_covered") + range));
    legend.append(ramp);
    for (const [cls, key] of [["cell-underserved", "cell_underserved"], ["cell-uncovered", "cell_uncovered"],
      ["zone-underserved", "zone_underserved"], ["boundary-district", "boundaryDistrict"],
      ["boundary-subdistrict", "boundarySubdistrict"]]) {
      const item = el("li");
      item.append(el("span", `key ${cls}`), el("span", "", t(key)));
      legend.append(item);
    }
  }

  // Who acknowledged an alert, who has it, how many notes: for every key; the buttons to act
  // on it come from `acting.controls` for the keys that may.
  function handlingOf(alert, acting) {
    const box = el("div", "alert-handling");
    const h = acting.handling.get(alert.alert_id);
    if (h && h.acknowledged_at) {
      box.dataset.acknowledged = "true";
      box.append(el("span", "tag", t("acknowledgedBy", { who: h.acknowledged_by, time: formatTime(h.acknowledged_at) })));
    }
    if (h && h.assignee) box.append(el("span", "tag", t("assignedTo", { who: h.assignee })));
    if (h && h.notes) box.append(el("span", "tag", t("notes", { n: number(h.notes) })));
    return box;
  }

  // The feed is rebuilt on every live update: whoever is typing in it keeps the focus and
  // the caret (the alerts' controls are the same elements, kept by WS.alertActions).
  function renderAlerts(alerts, describe, onLocate, acting) {
    const feed = $("alert-feed");
    const focused = feed.contains(document.activeElement) ? document.activeElement : null;
    const caret = focused && typeof focused.selectionStart === "number"
      ? [focused.selectionStart, focused.selectionEnd] : null;
    feed.replaceChildren();
    const sorted = [...alerts].sort((a, b) => (b.opened_at || "").localeCompare(a.opened_at || ""));
    $("alert-count").textContent = `(${number(sorted.length)})`;
    if (!sorted.length) feed.append(el("li", "empty", t("noAlerts")));
    for (const alert of sorted.slice(0, FEED_MAX)) {
      const item = el("li", `alert alert-${alert.kind}`);
      item.dataset.kind = alert.kind;
      item.dataset.subject = alert.subject;
      item.dataset.stations = alert.evidence.stations.join(" ");
      const head = el("div", "alert-head");
      head.append(el("span", "alert-kind", t(`kind_${alert.kind}`)),
        el("time", "alert-time", formatTime(alert.opened_at)));
      const subject = describe(alert);
      const body = el("div", "alert-subject");
      if (subject.locate) {
        const button = el("button", "link", subject.label);
        button.type = "button";
        button.setAttribute("aria-label", t("locate", { name: subject.label }));
        button.addEventListener("click", () => onLocate(alert));
        body.append(button);
      } else {
        body.textContent = subject.label;
      }
      item.append(head, body, el("div", "alert-detail", reasonText(alert.evidence.reason, alert.evidence.detail)),
        handlingOf(alert, acting));
      if (acting.mayAct) item.append(acting.controls(alert));
      feed.append(item);
    }
    if (sorted.length > FEED_MAX) feed.append(el("li", "more", t("andMore", { n: sorted.length - FEED_MAX })));
    if (focused && focused.isConnected && document.activeElement !== focused) {
      focused.focus({ preventScroll: true });
      if (caret) focused.setSelectionRange(...caret);
    }
  }

  function renderAttention(rows, onLocate) {
    const list = $("attention");
    list.replaceChildren();
    $("attention-count").textContent = `(${number(rows.length)})`;
    if (!rows.length) list.append(el("li", "empty", t("allAvailable")));
    for (const row of rows.slice(0, ATTENTION_MAX)) {
      const item = el("li");
      item.dataset.station = row.id;
      item.dataset.state = row.state;
      const button = el("button", "link");
      button.type = "button";
      button.append(WS.layers.swatch(row.state), el("span", "", `${row.name} (${row.id})`),
        el("span", "tag", t(`state_${row.state}`)));
      button.setAttribute("aria-label", `${t("locate", { name: row.name })}: ${t(`state_${row.state}`)}`);
      button.addEventListener("click", () => onLocate(row.index));
      item.append(button);
      list.append(item);
    }
    if (rows.length > ATTENTION_MAX) list.append(el("li", "more", t("andMore", { n: rows.length - ATTENTION_MAX })));
  }

  function row(dl, label, value) {
    dl.append(el("dt", "", label), el("dd", "", value));
  }

  // The server sends codes and values; the words are the page's, in its language. Reasons
  // stored before they had codes carry only English text, shown in the English page only.
  function reasonText(reason, english) {
    if (!reason) return WS.i18n.lang === "en" ? english || "" : "";
    const v = reason.values || {};
    return t(`reason_${reason.code}`, {
      status: v.status ? t(`checkIn_${v.status}`) : "",
      since: v.since ? formatTime(v.since) : "",
      hours: v.hours || "",
      amenities: (v.amenities || []).map((a) => t(`amenity_${a}`)).join(t("listSeparator")),
      uncovered: number(v.uncovered_workers ?? 0, 1),
      demand: number(v.demand_workers ?? 0, 1),
      visitors: number(v.visitors ?? 0),
      window: number(v.window_minutes ?? 0),
      seats: number(v.seats ?? 0),
      limit: number(v.limit ?? 0, 1),
    });
  }

  function eventSummary(e) {
    if (e.type === "check_in") return t(`checkIn_${e.payload.status}`);
    if (e.type === "visit") return e.payload.worker_kind ? t(`workerKind_${e.payload.worker_kind}`) : "";
    const faults = Object.entries(e.payload.amenities || {}).filter(([, s]) => s !== "ok");
    return faults.map(([a, s]) => t("labelValue", { label: t(`amenity_${a}`), value: t(`amenityState_${s}`) }))
      .join(t("listSeparator")) || t("allOk");
  }

  // The popup of a station: what the map knows at once; amenities, the reason for its state
  // and its latest events when `details` ({view, events}) arrives.
  function stationPopup(station, details) {
    const box = el("div", "popup station-popup");
    box.dataset.station = station.id;
    box.append(el("h3", "", station.name), el("div", "muted", station.id));
    const dl = el("dl");
    row(dl, t("kind"), t(`stationKind_${station.kind}`));
    const state = el("span", `state-tag state-${station.state}`);
    state.dataset.state = station.state;
    state.append(WS.layers.swatch(station.state, 12), el("span", "", t(`state_${station.state}`)));
    const stateCell = el("dd");
    stateCell.append(state);
    dl.append(el("dt", "", t("state")), stateCell);
    const amenities = el("dd", "", t("loading"));
    dl.append(el("dt", "", t("amenities")), amenities);
    const events = el("ol", "events");
    events.append(el("li", "muted", t("loading")));
    box.append(dl, el("h4", "", t("lastEvents")), events);
    details.then(({ view, events: found }) => {
      if (view.state_since) stateCell.append(el("span", "muted", ` ${t("since")} ${formatTime(view.state_since)}`));
      const why = reasonText(view.state_cause, view.state_reason);
      if (why) stateCell.append(el("div", "muted", why));
      amenities.textContent = view.station.amenities.map((a) => t(`amenity_${a}`)).join(" · ") || "–";
      events.replaceChildren();
      if (!found.length) events.append(el("li", "muted", t("noEvents")));
      for (const e of found) {
        const item = el("li");
        item.append(el("time", "", formatTime(e.occurred_at)), el("span", "event-type", t(`event_${e.type}`)),
          el("span", "muted", eventSummary(e)));
        events.append(item);
      }
      if (details.tour) details.tour.then((tour) => box.append(tourSection(tour)));
    }).catch(() => events.replaceChildren(el("li", "error", t("networkError"))));
    return box;
  }

  // A mobile unit's stop now and its next stops (GET /v1/stations/{id}/tour).
  function tourSection(tour) {
    const section = el("div", "tour");
    section.dataset.servingNow = String(tour.serving_now);
    const now = tour.current_stop;
    const here = now ? `${now.name || ""} ${formatTime(now.start)}–${formatTime(now.end)}` : "";
    section.append(el("h4", "", t("tourNow")),
      el("div", "tour-now", tour.serving_now ? `${t("tourAtStop")} ${here}` : t("tourBetweenStops")),
      el("h4", "", t("tourNext")));
    const list = el("ol", "tour-next");
    for (const stop of tour.next_stops) {
      list.append(el("li", "", `${stop.name || ""} ${formatTime(stop.start)}–${formatTime(stop.end)}`));
    }
    if (!tour.next_stops.length) list.append(el("li", "muted", t("tourNoMoreStops")));
    section.append(list);
    return section;
  }

  function cellPopup(cell) {
    const box = el("div", "popup");
    box.append(el("h3", "", `${t("cell")} ${cell.id}`));
    const dl = el("dl");
    row(dl, t("status"), t(`cell_${cell.status}`));
    row(dl, t("demand"), number(cell.demand, 1));
    row(dl, t("access"), number(cell.access, 4));
    box.append(dl);
    return box;
  }

  return { setTimeZone, formatTime, renderKpis, renderLegend, renderAlerts, renderAttention, stationPopup, cellPopup };
})();
