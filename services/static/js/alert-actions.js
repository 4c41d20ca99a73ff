// What a union or admin key does about an alert from the page: acknowledge it, assign it,
// add a note, read its history. The feed is rebuilt on every live update, so each alert's controls are kept
// here across renders: a half-typed note, an open history or a message survives them.
// Everything people typed is shown with textContent: no markup from them or from data.
"use strict";
window.WS = window.WS || {};

WS.alertActions = (() => {
  const { t, number } = WS.i18n;
  // The API's limits (schemas/alert_actions.py); the browser tests check that they agree.
  const ASSIGNEE_MAX_CHARS = 200;
  const NOTE_MAX_CHARS = 2000;
  const NOTE_ROWS = 3;
  const ACTION_KINDS = new Set(["acknowledged", "assigned", "noted"]); // worded by the page
  const kept = new Map(); // alert_id -> that alert's controls
  let serial = 0; // element ids: an alert id is the server's, not necessarily a valid id

  function el(tag, className, i18nKey) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (i18nKey) {
      node.dataset.i18n = i18nKey;
      node.textContent = t(i18nKey);
    }
    return node;
  }

  function sameInstant(a, b) {
    return (a ? Date.parse(a) : null) === (b ? Date.parse(b) : null);
  }

  // An API error as a message in the page's language (never the server's English text).
  function problemOf(error, maxChars) {
    const status = error && error.status;
    if (status === 409) return { key: "actionResolved" };
    if (status === 422) return { key: "textLength", vars: { max: maxChars } };
    if (status === 403) return { key: "actionForbidden" };
    if (status === 404) return { key: "actionUnknownAlert" };
    if (status === 401) return { key: "badKey" };
    return { key: error instanceof WS.api.ApiError ? "actionFailed" : "networkError" };
  }

  function historyWhat(action) {
    if (!ACTION_KINDS.has(action.action)) return t("history_other");
    return t(`history_${action.action}`, { who: action.assignee || "" });
  }

  // One alert's controls: the acknowledge button (until someone has), three disclosure
  // buttons, the assign and note forms, a message line and the history.
  // `io.act(alert, what, body)` posts and answers the alert's actions; `io.history(alert)`
  // reads them.
  function build(alert, io) {
    const id = `alert-act-${++serial}`;
    const node = el("div", "alert-actions");
    node.dataset.alertId = alert.alert_id;
    const bar = el("div", "alert-action-bar");
    bar.setAttribute("role", "group");
    bar.dataset.i18nAriaLabel = "actOnAlert";
    const message = el("p", "alert-message");
    message.setAttribute("role", "status");
    const history = el("section", "alert-history");
    history.id = `${id}-history`;
    history.hidden = true;
    history.dataset.i18nAriaLabel = "historyOpen";
    const historyList = el("ol");
    history.append(historyList);
    const state = { said: null, actions: null, loadedAt: null, loading: false };

    function say(kind, said) {
      state.said = said ? { kind, ...said } : null;
      showMessage();
    }

    function showMessage() {
      message.dataset.kind = state.said ? state.said.kind : "";
      const vars = state.said && state.said.vars ? { max: number(state.said.vars.max) } : undefined;
      message.textContent = state.said ? t(state.said.key, vars) : "";
    }

    function toggle(action, target, onOpen) {
      const button = el("button", "button small", action.label);
      button.type = "button";
      button.dataset.action = action.name;
      button.setAttribute("aria-expanded", "false");
      button.setAttribute("aria-controls", target.id);
      button.addEventListener("click", () => {
        const open = target.hidden;
        target.hidden = !open;
        button.setAttribute("aria-expanded", String(open));
        if (!open) return;
        say(null); // what was said is about the last thing done
        onOpen();
      });
      bar.append(button);
      return button;
    }

    function form(name, field, maxChars, labels, body, done) {
      const box = el("form", "alert-form");
      box.id = `${id}-${name}`;
      box.dataset.form = name;
      box.hidden = true;
      box.noValidate = true; // the page says what is wrong, in its language
      field.id = `${id}-${name}-text`;
      field.maxLength = maxChars;
      field.required = true;
      field.autocomplete = "off";
      const label = el("label", "", labels.field);
      label.htmlFor = field.id;
      const submit = el("button", "button small", labels.submit);
      submit.type = "submit";
      box.append(label, field, submit);
      const opener = toggle({ name, label: labels.open }, box, () => field.focus());
      function close() {
        box.hidden = true;
        opener.setAttribute("aria-expanded", "false");
        opener.focus();
      }
      box.addEventListener("keydown", (e) => {
        if (e.key === "Escape") { e.preventDefault(); close(); }
        // In the note, Enter starts a new line; Ctrl+Enter (or ⌘+Enter) saves it.
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); box.requestSubmit(); }
      });
      box.addEventListener("submit", async (e) => {
        e.preventDefault();
        if (submit.disabled) return; // Ctrl+Enter while the last one is on its way
        const text = field.value.trim();
        if (!text) {
          say("error", { key: "textLength", vars: { max: maxChars } });
          return field.focus();
        }
        submit.disabled = true;
        box.setAttribute("aria-busy", "true");
        try {
          const answer = await io.act(alert, name, body(text));
          field.value = "";
          say("done", { key: done });
          if (state.actions) showHistory(answer);
          close();
        } catch (error) {
          say("error", problemOf(error, maxChars));
          field.focus();
        } finally {
          submit.disabled = false;
          box.removeAttribute("aria-busy");
        }
      });
      return box;
    }

    function showHistory(answer) {
      if (answer) {
        state.actions = answer.actions;
        state.loadedAt = answer.handling.last_action_at || null;
      }
      historyList.replaceChildren();
      if (state.loading && !state.actions) historyList.append(el("li", "muted", "loading"));
      else if (state.actions && !state.actions.length) historyList.append(el("li", "muted", "historyEmpty"));
      for (const action of state.actions || []) {
        const item = el("li");
        item.dataset.action = action.action;
        const when = el("time");
        when.dateTime = action.at;
        when.textContent = WS.panel.formatTime(action.at);
        const who = el("span", "history-who");
        who.textContent = action.by_label;
        const what = el("span", "history-what");
        what.textContent = historyWhat(action);
        const head = el("div", "history-head");
        head.append(when, who, what);
        item.append(head);
        if (action.note) {
          const note = el("p", "history-note");
          note.textContent = action.note;
          item.append(note);
        }
        historyList.append(item);
      }
    }

    async function loadHistory() {
      if (state.loading) return;
      state.loading = true;
      showHistory();
      try {
        showHistory(await io.history(alert));
      } catch (error) {
        say("error", problemOf(error, NOTE_MAX_CHARS));
      } finally {
        state.loading = false;
        showHistory();
      }
    }

    const acknowledge = el("button", "button small", "acknowledge");
    acknowledge.type = "button";
    acknowledge.dataset.action = "acknowledge";
    bar.append(acknowledge);
    acknowledge.addEventListener("click", async () => {
      acknowledge.disabled = true;
      say(null);
      try {
        await io.act(alert, "acknowledge");
        if (acknowledge.hidden) bar.querySelector("[data-action=assign]").focus(); // not lost
      } catch (error) {
        say("error", problemOf(error, NOTE_MAX_CHARS));
      } finally {
        acknowledge.disabled = false;
      }
    });

    const assignee = el("input");
    assignee.type = "text";
    const note = el("textarea");
    note.rows = NOTE_ROWS;
    const assignForm = form("assign", assignee, ASSIGNEE_MAX_CHARS,
      { open: "assignOpen", field: "assignLabel", submit: "assignSave" },
      (text) => ({ assignee: text }), "assignDone");
    const noteForm = form("notes", note, NOTE_MAX_CHARS,
      { open: "noteOpen", field: "noteLabel", submit: "noteSave" },
      (text) => ({ text }), "noteDone");
    toggle({ name: "history", label: "historyOpen" }, history, loadHistory);
    node.append(bar, assignForm, noteForm, message, history);

    return {
      node,
      // Words in the page's current language; a fresh history when someone acted meanwhile.
      refresh(handling) {
        acknowledge.hidden = Boolean(handling && handling.acknowledged_at);
        WS.i18n.apply(node);
        showMessage();
        showHistory();
        const last = handling ? handling.last_action_at : null;
        if (!history.hidden && state.actions && !sameInstant(last, state.loadedAt)) loadHistory();
      },
    };
  }

  // The controls of an alert, made on first use and kept until the alert leaves the page.
  function controlsFor(alert, handling, io) {
    let controls = kept.get(alert.alert_id);
    if (!controls) {
      controls = build(alert, io);
      kept.set(alert.alert_id, controls);
    }
    controls.refresh(handling);
    return controls.node;
  }

  function keepOnly(alertIds) {
    for (const alertId of kept.keys()) if (!alertIds.has(alertId)) kept.delete(alertId);
  }

  return { controlsFor, keepOnly, clear: () => kept.clear(), ASSIGNEE_MAX_CHARS, NOTE_MAX_CHARS };
})();
