/* peestore operator console: plain JavaScript, no framework, no build step.
 *
 * Every page is rendered by the server with what it needs in data- attributes
 * of <body>; this script loads and changes the data through the plugin's JSON
 * routes.  Values from the database only ever become text nodes (never HTML).
 * <main data-state> is "loading" while a request runs and "ready" after.
 */
"use strict";
(function () {
  var B = document.body, D = B.dataset, ROOT = D.root, HOME = ROOT + "/db/console/";
  var AUTH = D.auth === "1";
  var main = document.getElementById("main");
  var flashBox = document.getElementById("flash");
  var NAME_KEY = "peestore.console.user";
  var PAGE = 50;

  /* -- DOM helpers: strings are always text nodes ------------------------ */
  function el(tag, attrs, kids) {
    var node = document.createElement(tag);
    var key;
    for (key in attrs || {}) {
      var value = attrs[key];
      if (value === undefined || value === null || value === false) continue;
      if (key === "on") {
        for (var ev in value) node.addEventListener(ev, value[ev]);
      } else if (key === "text") {
        node.textContent = value;
      } else {
        node.setAttribute(key, value === true ? "" : value);
      }
    }
    add(node, kids);
    return node;
  }
  function add(node, kids) {
    if (kids === undefined || kids === null) return node;
    if (!Array.isArray(kids)) kids = [kids];
    kids.forEach(function (kid) {
      if (kid === undefined || kid === null || kid === false) return;
      node.appendChild(typeof kid === "object" ? kid : document.createTextNode(String(kid)));
    });
    return node;
  }
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }
  function $(id) { return document.getElementById(id); }
  function json(text) { try { return JSON.parse(text || "null"); } catch (e) { return null; } }
  function enc(s) { return encodeURIComponent(s); }
  function busy(on) { main.dataset.state = on ? "loading" : "ready"; }

  /* A value as the text shown for it. */
  function show(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }
  /* A value in a table cell or a diff: empty is marked as such. */
  function cell(value) {
    if (value === null || value === undefined) return el("span", {class: "null", text: "empty"});
    return show(value);
  }
  /* A naive UTC timestamp from the server, in the browser's time (UTC in its title). */
  function when(stamp) {
    if (!stamp) return "";
    var date = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(stamp) ? stamp : stamp + "Z");
    if (isNaN(date)) return el("span", {text: stamp});
    return el("time", {datetime: stamp, title: stamp + " UTC", text: date.toLocaleString()});
  }

  /* -- live changes: GET /db/changes tells the page when to refresh -------- */
  /* Calls onChange(change) for each change to `component` another client (or this
   * page) commits, at most once per burst.  EventSource reconnects by itself after
   * a network error (sending Last-Event-ID, so nothing is missed); after a refusal
   * (all streams taken: 503) it is opened again later, and the page refreshes. */
  function follow(component, onChange) {
    if (!window.EventSource) return;
    var source = null, timer = null, latest = null;
    function open() {
      source = new EventSource(ROOT + "/db/changes?components=" + enc(component));
      source.addEventListener("change", function (ev) {
        latest = json(ev.data);
        if (!latest || timer) return;
        timer = setTimeout(function () { timer = null; onChange(latest); }, 250);
      });
      source.addEventListener("error", function () {
        if (source.readyState !== EventSource.CLOSED) return;
        setTimeout(function () { if (!document.hidden) { open(); onChange(null); } }, 15000);
      });
    }
    open();
    window.addEventListener("pagehide", function () { if (source) source.close(); });
  }

  /* -- messages ------------------------------------------------------------ */
  function flash(message, kind, action) {
    clear(flashBox);
    if (!message) { flashBox.hidden = true; return; }
    flashBox.className = kind || "error";
    add(flashBox, el("span", {text: message}));
    if (action) add(flashBox, el("button", {type: "button", on: {click: action.run}, text: action.label}));
    add(flashBox, el("button", {type: "button", class: "close", "aria-label": "Dismiss", text: "×",
                                on: {click: function () { flash(""); }}}));
    flashBox.hidden = false;
    if (kind !== "ok") flashBox.scrollIntoView({block: "nearest"});
  }
  /* What went wrong with a JSON answer, in words an operator can act on. */
  function problem(r) {
    var detail = r.data && r.data.detail;
    if (r.status === 0) return "The machine did not answer: " + detail + ". Check the connection and try again.";
    if (r.status === 401) return "Sign in needed: your sign-in was not accepted (" + (detail || "401") + "). Reload the page to sign in.";
    if (r.status === 403) return "Not allowed: " + (detail || "your identity may not do this") + ".";
    if (r.status === 412) return "Changed meanwhile: someone else saved this record after you opened it. Reload to see the current version (your changes here are not saved).";
    return (detail || "The server answered " + r.status) + " (HTTP " + r.status + ")";
  }

  /* -- who is working ------------------------------------------------------ */
  function userName() { return AUTH ? D.user : (localStorage.getItem(NAME_KEY) || ""); }
  /* A header value must be bytes: a name is sent as its UTF-8 bytes. */
  function utf8(text) {
    return Array.prototype.map.call(new TextEncoder().encode(text), function (b) {
      return String.fromCharCode(b);
    }).join("");
  }
  function showWho() {
    var box = clear($("who"));
    if (AUTH) {
      add(box, D.user ? el("span", {}, [el("span", {class: "muted", text: "Signed in as "}), el("b", {text: D.user})])
                      : el("span", {class: "muted", text: "Not signed in"}));
      return;
    }
    var name = userName();
    add(box, el("button", {type: "button", id: "change-user", title: "The name the audit log records for your changes",
                           on: {click: askName}}, el("span", {}, name ? ["Operator: ", el("b", {text: name})] : "Who are you?")));
  }
  function askName() {
    if ($("ask-name")) return;
    var input = el("input", {id: "user-name", name: "user", maxlength: "200", required: true,
                             autocomplete: "username", value: userName()});
    var form = el("form", {class: "dialog", on: {submit: function (ev) {
      ev.preventDefault();
      var name = input.value.trim();
      if (!name) { input.focus(); return; }
      localStorage.setItem(NAME_KEY, name);
      overlay.remove();
      showWho();
    }}}, [
      el("h2", {text: "Who is working here?"}),
      el("p", {text: "Your name goes into the audit log with every change you make from this browser. It is kept in this browser until you change it."}),
      el("label", {}, ["Your name ", input]),
      el("div", {class: "actions"}, [el("button", {class: "primary", text: "Continue"}),
        userName() ? el("button", {type: "button", text: "Cancel", on: {click: function () { overlay.remove(); }}}) : null])
    ]);
    var overlay = el("div", {id: "ask-name", class: "overlay"}, form);
    B.appendChild(overlay);
    input.focus();
  }

  /* -- the JSON routes ----------------------------------------------------- */
  function api(method, path, opts) {
    opts = opts || {};
    var headers = {"Accept": "application/json"};
    var body;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    } else if (opts.form) {
      body = opts.form;
    }
    if (opts.etag) headers["If-Match"] = opts.etag;
    if (method !== "GET" && !AUTH && userName()) headers["X-User"] = utf8(userName());
    if (opts.reason) headers["X-Reason"] = utf8(opts.reason);
    return fetch(ROOT + path, {method: method, headers: headers, body: body,
                               credentials: "same-origin", cache: "no-store"})
      .then(function (res) {
        var type = res.headers.get("Content-Type") || "";
        var parsed = type.indexOf("json") >= 0 ? res.json().catch(function () { return null; }) : Promise.resolve(null);
        return parsed.then(function (data) {
          return {status: res.status, ok: res.ok, headers: res.headers, data: data};
        });
      }, function (err) {
        return {status: 0, ok: false, headers: new Headers(), data: {detail: String(err && err.message || err)}};
      });
  }
  /* A write needs a name (without authenticate): ask for it first. */
  function canWrite() {
    if (AUTH || userName()) return true;
    askName();
    return false;
  }

  /* -- fields and forms ---------------------------------------------------- */
  var INTEGER = "integer", NUMBER = "number", BOOLEAN = "boolean";
  function fieldText(f, value) {
    if (value === null || value === undefined) return "";
    if (f.kind === "any") return JSON.stringify(value);
    return show(value);
  }
  /* The JSON value an input's text stands for (the server checks it). */
  function fieldValue(f, text) {
    if (f.choices) return text === "" ? null : f.choices[Number(text)];
    if (text === "" && (f.null || f.kind !== "string")) return null;
    if (f.kind === INTEGER && /^\s*-?\d+\s*$/.test(text)) return parseInt(text, 10);
    if (f.kind === NUMBER && text.trim() !== "" && !isNaN(Number(text))) return Number(text);
    if (f.kind === BOOLEAN) return text === "true" ? true : text === "false" ? false : text;
    if (f.kind === "any") { try { return JSON.parse(text); } catch (e) { return text; } }
    return text;
  }
  function inputFor(f, value) {
    var id = "f-" + f.name, attrs = {id: id, name: f.name};
    var input;
    if (f.choices || f.kind === BOOLEAN) {
      var options = f.choices || [true, false];
      input = el("select", attrs);
      if (f.null || value === undefined) add(input, el("option", {value: "", text: f.null ? "(empty)" : "(choose)"}));
      options.forEach(function (choice, i) {
        add(input, el("option", {value: f.choices ? String(i) : String(choice), text: show(choice)}));
      });
      var at = options.findIndex(function (c) { return c === value; });
      input.value = at < 0 ? "" : f.choices ? String(at) : String(value);
    } else if (f.long || f.kind === "any") {
      input = el("textarea", Object.assign(attrs, {rows: "3"}));
      input.value = fieldText(f, value);
    } else {
      attrs.maxlength = f.max_length;
      if (f.kind === INTEGER) attrs.inputmode = "numeric";
      if (f.kind === NUMBER || f.kind === "decimal") attrs.inputmode = "decimal";
      var hints = {datetime: "YYYY-MM-DDTHH:MM:SS (UTC)", date: "YYYY-MM-DD", time: "HH:MM:SS (UTC)"};
      attrs.placeholder = hints[f.kind];
      input = el("input", attrs);
      input.value = fieldText(f, value);
    }
    return input;
  }
  function describe(f) {
    var bits = [f.kind];
    if (f.fk) bits = ["id of a " + f.fk + " record"];
    if (f.max_length && !f.choices) bits.push("at most " + f.max_length + " characters");
    if (f.auto) bits.push("set by the app when left empty");
    if (f.help) bits.unshift(f.help);
    return bits.join(", ");
  }
  /* A form of the model's fields; mode "edit" (a row) or "new". */
  function buildForm(form, meta, row, mode) {
    clear(form);
    var inputs = {};
    meta.fields.forEach(function (f) {
      var value = row ? row[f.name] : f.default;
      var label = el("label", {for: "f-" + f.name}, [f.name, f.required && mode === "new" ? el("span", {class: "req", title: "required", text: " *"}) : null]);
      var box = el("div", {class: "field", "data-field": f.name}, label);
      if (f.read_only || (mode === "edit" && f.name === meta.pk)) {
        if (mode === "new") return;
        add(box, el("div", {class: "readonly", id: "f-" + f.name}, cell(value)));
      } else {
        var input = inputFor(f, value);
        inputs[f.name] = {field: f, input: input, original: input.value};
        add(box, input);
      }
      if (f.fk && row && value !== null && value !== undefined) {
        add(box, el("a", {class: "fk", href: HOME + enc(f.fk) + "/" + enc(value), text: "open " + f.fk + " " + value}));
      }
      add(box, [el("small", {class: "muted", text: describe(f)}), el("div", {class: "error", id: "e-" + f.name, role: "alert"})]);
      add(form, box);
    });
    return inputs;
  }
  function fieldErrors(form, r) {
    form.querySelectorAll(".field").forEach(function (box) { box.classList.remove("bad"); });
    form.querySelectorAll(".error").forEach(function (e) { e.textContent = ""; });
    var errors = (r && r.data && r.data.errors) || {};
    var shown = 0, rest = [];
    Object.keys(errors).forEach(function (name) {
      /* "reason" is the change's reason unless the model has a field of that name. */
      var at = $("e-" + name) || (name === "reason" ? $("e-change-reason") : null);
      if (at) {
        at.textContent = errors[name];
        at.parentNode.classList.add("bad");
        shown++;
      } else {
        rest.push(name + ": " + errors[name]);
      }
    });
    if (r) flash(shown && !rest.length ? "Not saved: see the fields marked below." : problem(r) + (rest.length ? " — " + rest.join("; ") : ""));
    var first = form.querySelector(".bad input, .bad select, .bad textarea");
    if (first) first.focus();
  }
  /* The reason for a change: sent as X-Reason, kept in its audit entries. */
  function reasonBox(meta) {
    var input = el("input", {id: "change-reason", name: "change-reason", type: "text",
                             maxlength: "2000", autocomplete: "off"});
    var label = el("label", {for: "change-reason"}, ["Reason for the change",
      meta.require_reason ? el("span", {class: "req", title: "required", text: " *"}) : null]);
    return el("div", {class: "field wide", "data-field": "change-reason"}, [label, input,
      el("small", {class: "muted", text: meta.require_reason ? "required: recorded in the audit log with the change" : "optional: recorded in the audit log with the change"}),
      el("div", {class: "error", id: "e-change-reason", role: "alert"})]);
  }
  function reasonOf(form, meta) {
    var input = $("change-reason");
    var text = input ? input.value.trim() : "";
    if (!text && meta.require_reason) {
      fieldErrors(form, {status: 422, data: {detail: "a reason is required", errors: {reason: "required: say why you change this"}}});
      return null;
    }
    return text;
  }
  function changed(inputs, all) {
    var body = {};
    Object.keys(inputs).forEach(function (name) {
      var item = inputs[name];
      if (all ? item.input.value !== "" : item.input.value !== item.original) {
        body[name] = fieldValue(item.field, item.input.value);
      }
    });
    return body;
  }

  /* -- history and audit entries ------------------------------------------- */
  function entryItem(entry, opts) {
    var head = el("div", {class: "head"}, [
      el("b", {class: "op op-" + entry.operation, text: entry.operation}), " by ",
      el("span", {class: "actor", text: entry.actor}), " · ", when(entry.timestamp)]);
    if (opts.record) {
      add(head, [" · ", el("a", {href: HOME + enc(entry.component) + "/" + enc(entry.record_id),
                                 text: entry.component + " " + entry.record_id})]);
    }
    var item = el("li", {class: "entry", "data-audit-id": entry.id}, head);
    if (entry.reason) add(item, el("p", {class: "reason"}, ["Reason: ", el("q", {text: entry.reason})]));
    var before = entry.before || {}, after = entry.after || {};
    var names = entry.changed || Object.keys(after);
    if (names.length) {
      /* A create or a delete has one side only: its values, without an arrow. */
      var one = !entry.before ? after : !entry.after ? before : null;
      add(item, el("ul", {class: "diff"}, names.map(function (name) {
        var parts = [el("span", {class: "f", text: name}), ": "];
        if (one) parts.push(el("span", {class: one === after ? "a" : "b"}, cell(one[name])));
        else parts.push(el("span", {class: "b"}, name in before ? cell(before[name]) : el("span", {class: "null", text: "none"})), " → ",
                        el("span", {class: "a"}, name in after ? cell(after[name]) : el("span", {class: "null", text: "none"})));
        return el("li", {}, parts);
      })));
    }
    if (opts.revert && entry.after) {
      add(item, el("button", {type: "button", class: "revert", text: "Revert to this",
                              on: {click: function () { opts.revert(entry); }}}));
    }
    return item;
  }

  /* -- pages --------------------------------------------------------------- */
  var pages = {};

  pages.home = function () {
    var components = json(D.components) || [];
    var byName = {};
    components.forEach(function (c) { byName[c.name] = c; });
    var jobs = Array.prototype.map.call(document.querySelectorAll("[data-count]"), function (span) {
      var c = byName[span.dataset.count];
      return api("GET", "/" + enc(c.name) + "/?limit=1&fields=" + enc(c.pk)).then(function (r) {
        var total = r.headers.get("X-Total-Count");
        span.textContent = r.ok && total !== null ? total + (total === "1" ? " row" : " rows") : "?";
        if (!r.ok) span.title = problem(r);
      });
    });
    var health = $("health");
    if (health) {
      jobs.push(api("GET", "/db/health").then(function (r) {
        var d = r.data || {};
        health.className = "health " + (r.ok ? "good" : "bad");
        health.textContent = r.ok ? "Database: " + d.database + ", answering (" + d.latency_ms + " ms)"
          : "Database: not answering — " + (d.detail || problem(r));
      }));
    }
    return Promise.all(jobs);
  };

  var RESERVED = ["order_by", "limit", "offset", "include_deleted", "fields"];

  pages.table = function () {
    var meta = json(D.meta);
    var fields = {};
    meta.fields.forEach(function (f) { fields[f.name] = f; });
    var form = $("filters"), table = $("rows");
    var params;

    function filterRow(name, op, value) {
      var fieldSel = el("select", {"aria-label": "field", class: "f-field"},
        meta.fields.map(function (f) { return el("option", {value: f.name, text: f.name}); }));
      var opSel = el("select", {"aria-label": "operator", class: "f-op"});
      var input = el("input", {"aria-label": "value", class: "f-value"});
      function ops() {
        var keep = opSel.value || op;
        clear(opSel);
        fields[fieldSel.value].ops.forEach(function (o) { add(opSel, el("option", {value: o, text: o.replace("_", " ")})); });
        opSel.value = fields[fieldSel.value].ops.indexOf(keep) >= 0 ? keep : "eq";
        input.placeholder = opSel.value === "in" || opSel.value === "not_in" ? "a,b,c" : opSel.value === "is_null" ? "true or false" : opSel.value === "like" ? "%text%" : "";
      }
      fieldSel.value = name;
      fieldSel.addEventListener("change", ops);
      opSel.addEventListener("change", ops);
      ops();
      input.value = value;
      var row = el("div", {class: "filter"}, [fieldSel, opSel, input,
        el("button", {type: "button", class: "remove", "aria-label": "Remove this filter", text: "×",
                      on: {click: function () { row.remove(); }}})]);
      return row;
    }
    function buildFilters() {
      clear(form);
      var list = el("div", {id: "filter-list"});
      params.forEach(function (value, key) {
        if (RESERVED.indexOf(key) >= 0) return;
        var parts = key.split("__"), op = parts.length > 1 ? parts.pop() : "eq";
        var name = parts.join("__");
        if (fields[name]) add(list, filterRow(name, op, value));
      });
      var controls = el("div", {class: "actions"}, [
        el("button", {type: "button", id: "add-filter", text: "Add filter", on: {click: function () {
          add(list, filterRow(meta.fields[0].name, "eq", ""));
          list.lastChild.querySelector(".f-value").focus();
        }}}),
        el("button", {class: "primary", id: "apply", text: "Apply"}),
        el("button", {type: "button", id: "clear-filters", text: "Clear", on: {click: function () {
          clear(list); apply();
        }}})]);
      if (meta.soft_delete) {
        add(controls, el("label", {class: "check"}, [el("input", {type: "checkbox", id: "include-deleted",
          checked: params.get("include_deleted") === "true", on: {change: apply}}), " show deleted rows"]));
      }
      add(form, [list, controls]);
    }
    function apply() {
      var next = new URLSearchParams();
      form.querySelectorAll(".filter").forEach(function (row) {
        var name = row.querySelector(".f-field").value, op = row.querySelector(".f-op").value;
        next.append(op === "eq" ? name : name + "__" + op, row.querySelector(".f-value").value);
      });
      var deleted = $("include-deleted");
      if (deleted && deleted.checked) next.set("include_deleted", "true");
      if (params.get("order_by")) next.set("order_by", params.get("order_by"));
      go(next);
    }
    function go(next) {
      params = next;
      var query = params.toString();
      history.pushState(null, "", location.pathname + (query ? "?" + query : ""));
      load();
    }
    function sortBy(name) {
      var next = new URLSearchParams(params);
      next.set("order_by", params.get("order_by") === name ? "-" + name : name);
      next.delete("offset");
      go(next);
    }
    function header() {
      var order = params.get("order_by") || "";
      return el("thead", {}, el("tr", {}, meta.fields.map(function (f) {
        var mark = order === f.name ? " ▲" : order === "-" + f.name ? " ▼" : "";
        return el("th", {scope: "col", "aria-sort": mark ? (mark === " ▲" ? "ascending" : "descending") : null},
          el("button", {type: "button", class: "sort", "data-sort": f.name, title: "Sort by " + f.name,
                        on: {click: function () { sortBy(f.name); }}}, [f.name, mark]));
      })));
    }
    function load() {
      busy(true);
      var query = new URLSearchParams(params);
      query.set("limit", PAGE);
      return api("GET", "/" + enc(meta.component) + "/?" + query).then(function (r) {
        clear(table);
        add(table, header());
        if (!r.ok) {
          flash(problem(r));
          $("summary").textContent = $("position").textContent = "";
          $("prev").disabled = $("next").disabled = true;
          return;
        }
        flash("");
        var offset = Number(params.get("offset") || 0), total = Number(r.headers.get("X-Total-Count") || r.data.length);
        add(table, el("tbody", {}, r.data.map(function (row) {
          var deleted = meta.soft_delete && row.deleted_at;
          return el("tr", {class: deleted ? "deleted" : null}, meta.fields.map(function (f) {
            var value = row[f.name];
            if (f.name === meta.pk) {
              return el("td", {}, [el("a", {class: "open", href: HOME + enc(meta.component) + "/" + enc(value), text: show(value)}),
                                   deleted ? el("span", {class: "tag", text: "deleted"}) : null]);
            }
            if (f.fk && value !== null && value !== undefined) {
              return el("td", {}, el("a", {href: HOME + enc(f.fk) + "/" + enc(value), text: show(value)}));
            }
            return el("td", {title: show(value).length > 40 ? show(value) : null}, cell(value));
          }));
        })));
        $("summary").textContent = total ? "" : "No rows match.";
        $("position").textContent = total ? "rows " + (offset + 1) + "–" + (offset + r.data.length) + " of " + total : "";
        $("prev").disabled = offset <= 0;
        $("next").disabled = offset + r.data.length >= total;
      }).finally(function () { busy(false); });
    }
    function page(step) {
      var next = new URLSearchParams(params);
      var offset = Math.max(0, Number(params.get("offset") || 0) + step * PAGE);
      if (offset) next.set("offset", offset); else next.delete("offset");
      go(next);
    }
    function fromLocation() {
      params = new URLSearchParams(location.search);
      params.delete("limit");
      buildFilters();
      return load();
    }
    form.addEventListener("submit", function (ev) { ev.preventDefault(); apply(); });
    $("prev").addEventListener("click", function () { page(-1); });
    $("next").addEventListener("click", function () { page(1); });
    window.addEventListener("popstate", fromLocation);
    follow(meta.component, function () { if (main.dataset.state !== "loading") load(); });
    return fromLocation();
  };

  pages.new = function () {
    var meta = json(D.meta);
    var form = $("record");
    var inputs = buildForm(form, meta, null, "new");
    add(form, reasonBox(meta));
    add(form, el("div", {class: "actions"}, [el("button", {class: "primary", id: "save", text: "Create"}),
      el("a", {class: "button", href: HOME + enc(meta.component), text: "Cancel"})]));
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!canWrite()) return;
      var reason = reasonOf(form, meta);
      if (reason === null) return;
      busy(true);
      api("POST", "/" + enc(meta.component) + "/", {json: changed(inputs, true), reason: reason}).then(function (r) {
        if (r.status === 201) {
          location.assign(HOME + enc(meta.component) + "/" + enc(r.data[meta.pk]));
          return;
        }
        fieldErrors(form, r);
      }).finally(function () { busy(false); });
    });
    return Promise.resolve();
  };

  pages.record = function () {
    var meta = json(D.meta), id = D.id;
    var path = "/" + enc(meta.component) + "/" + enc(id);
    var form = $("record"), state = $("state"), list = $("history");
    var etag = null, inputs = {};

    function reloadAction() { return {label: "Reload", run: function () { flash(""); load(); }}; }
    function failed(r) {
      if (r.status === 412) flash(problem(r), "error", reloadAction());
      else fieldErrors(form, r);
    }
    function write(method, suffix, body, done) {
      if (!canWrite()) return;
      var reason = reasonOf(form, meta);
      if (reason === null) return;
      busy(true);
      api(method, path + suffix, {json: body, etag: etag, reason: reason}).then(function (r) {
        if (!r.ok) { failed(r); return; }
        return load().then(function () { flash(done, "ok"); });
      }).finally(function () { busy(false); });
    }
    function confirmStep(question, yes, run) {
      var box = $("actions");
      var keep = Array.prototype.slice.call(box.childNodes);
      clear(box);
      add(box, [el("span", {class: "ask", text: question}),
        el("button", {type: "button", class: "danger", id: "confirm", text: yes, on: {click: run}}),
        el("button", {type: "button", id: "cancel", text: "Cancel", on: {click: function () { clear(box); add(box, keep); }}})]);
      box.scrollIntoView({block: "nearest"});
    }
    function render(row) {
      var deleted = meta.soft_delete && row && row.deleted_at;
      state.hidden = !(deleted || !row);
      state.className = "state warn";
      state.textContent = !row ? "This record no longer exists; its history is below." :
        deleted ? "Deleted (soft) at " + row.deleted_at + " UTC. Restore it to edit it again." : "";
      clear(form);
      if (!row) return;
      inputs = buildForm(form, meta, row, "edit");
      add(form, reasonBox(meta));
      var buttons = [];
      if (!deleted) buttons.push(el("button", {class: "primary", id: "save", text: "Save changes"}));
      if (!deleted) {
        buttons.push(el("button", {type: "button", class: "danger", id: "delete", text: "Delete", on: {click: function () {
          confirmStep(meta.soft_delete ? "Delete this record? It can be restored." : "Delete this record for good?",
            "Yes, delete", function () { write("DELETE", "", undefined, "Deleted."); });
        }}}));
      } else {
        buttons.push(el("button", {type: "button", class: "primary", id: "restore", text: "Restore", on: {click: function () {
          write("POST", "/restore", undefined, "Restored.");
        }}}));
      }
      if (deleted) form.querySelectorAll("input, select, textarea").forEach(function (i) { i.disabled = i.id !== "change-reason"; });
      add(form, el("div", {class: "actions", id: "actions"}, buttons));
    }
    function loadHistory() {
      return api("GET", path + "/history?limit=1000").then(function (r) {
        clear(list);
        if (!r.ok) { add(list, el("li", {class: "muted", text: r.status === 404 ? "No history." : problem(r)})); return; }
        if (!r.data.length) add(list, el("li", {class: "muted", text: meta.audited ? "No audit entries yet." : "This component is not audited: it keeps no history."}));
        r.data.forEach(function (entry, i) {
          add(list, entryItem(entry, {revert: i === 0 && etag ? null : function (e) {
            var box = clear(el("div", {class: "actions confirm"}));
            var item = list.querySelector('[data-audit-id="' + e.id + '"]');
            var old = item.querySelector(".confirm");
            if (old) old.remove();
            add(box, [el("span", {class: "ask", text: "Set the record back to how it was after this " + e.operation + "?"}),
              el("button", {type: "button", class: "primary", id: "confirm-revert", text: "Yes, revert", on: {click: function () {
                write("POST", "/revert", {audit_id: e.id}, "Reverted to entry " + e.id + ".");
              }}}),
              el("button", {type: "button", text: "Cancel", on: {click: function () { box.remove(); }}})]);
            add(item, box);
            box.scrollIntoView({block: "nearest"});
          }}));
        });
      });
    }
    function load() {
      busy(true);
      return api("GET", path + "?include_deleted=true").then(function (r) {
        if (r.ok) {
          etag = r.headers.get("ETag");
          render(r.data);
        } else if (r.status === 404) {
          etag = null;
          render(null);
        } else {
          flash(problem(r));
        }
        return loadHistory();
      }).finally(function () { busy(false); });
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var body = changed(inputs, false);
      if (!Object.keys(body).length) { flash("Nothing to save: no field was changed.", "ok"); return; }
      write("PATCH", "", body, "Saved.");
    });
    follow(meta.component, function (change) {
      if (change && String(change.record_id) !== String(id)) return;
      if (main.dataset.state === "loading") return;
      if (!Object.keys(changed(inputs, false)).length && !document.querySelector("#confirm, #confirm-revert")) {
        load();   /* nothing typed here: show the record as it is now */
        return;
      }
      if (!flashBox.hidden) return;   /* a message (e.g. a 412) is showing already */
      flash("Changed meanwhile" + (change ? " by " + change.actor + " (" + change.operation + ")" : "") +
            ": reload to see it (what you typed here is not saved).", "error", reloadAction());
      loadHistory();
    });
    return load();
  };

  pages.audit = function () {
    var form = $("audit-filters"), list = $("entries");
    var NAMES = ["component", "record_id", "actor", "operation", "since", "until"];
    var params;
    function local(iso) {   /* UTC ISO text -> the datetime-local value in this browser's time */
      var d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : iso + "Z");
      if (isNaN(d)) return "";
      var p = function (n) { return String(n).padStart(2, "0"); };
      return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
    }
    function fromLocation() {
      params = new URLSearchParams(location.search);
      NAMES.forEach(function (name) {
        var value = params.get(name) || "";
        form.elements[name].value = (name === "since" || name === "until") && value ? local(value) : value;
      });
      return load();
    }
    function go(next) {
      params = next;
      var query = params.toString();
      history.pushState(null, "", location.pathname + (query ? "?" + query : ""));
      load();
    }
    function load() {
      busy(true);
      var query = new URLSearchParams(params);
      query.set("limit", PAGE);
      return api("GET", "/db/audit?" + query).then(function (r) {
        clear(list);
        if (!r.ok) {
          flash(problem(r));
          $("summary").textContent = $("position").textContent = "";
          $("prev").disabled = $("next").disabled = true;
          return;
        }
        flash("");
        var offset = Number(params.get("offset") || 0), total = Number(r.headers.get("X-Total-Count") || r.data.length);
        r.data.forEach(function (entry) { add(list, entryItem(entry, {record: true})); });
        $("summary").textContent = total ? "" : "No audit entries match.";
        $("position").textContent = total ? "entries " + (offset + 1) + "–" + (offset + r.data.length) + " of " + total : "";
        $("prev").disabled = offset <= 0;
        $("next").disabled = offset + r.data.length >= total;
      }).finally(function () { busy(false); });
    }
    function page(step) {
      var next = new URLSearchParams(params);
      var offset = Math.max(0, Number(params.get("offset") || 0) + step * PAGE);
      if (offset) next.set("offset", offset); else next.delete("offset");
      go(next);
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var next = new URLSearchParams();
      NAMES.forEach(function (name) {
        var value = form.elements[name].value.trim();
        if (!value) return;
        if (name === "since" || name === "until") {
          var d = new Date(value);
          if (isNaN(d)) return;
          value = d.toISOString().replace(/\.\d+Z$/, "Z");
        }
        next.set(name, value);
      });
      go(next);
    });
    $("clear").addEventListener("click", function () { form.reset(); go(new URLSearchParams()); });
    $("prev").addEventListener("click", function () { page(-1); });
    $("next").addEventListener("click", function () { page(1); });
    window.addEventListener("popstate", fromLocation);
    return fromLocation();
  };

  pages.diagram = function () {
    var img = $("diagram");
    return new Promise(function (resolve) {
      function done() {
        if (!img.naturalWidth) flash("The diagram could not be drawn: open it full size to see the server's answer.");
        resolve();
      }
      if (img.complete) done(); else { img.addEventListener("load", done); img.addEventListener("error", done); }
    });
  };

  pages.data = function () {
    var jobs = [api("GET", "/db/health").then(function (r) {
      var backend = r.data && r.data.database;
      if (backend && backend !== "sqlite") {
        ["backup", "restore"].forEach(function (id) {
          var section = $(id);
          clear(section);
          add(section, [el("h2", {text: id === "backup" ? "Backup" : "Restore"}),
            el("p", {class: "muted", text: "Backup and restore work on SQLite only; this database is " + backend +
              ". Use its own tools (pg_dump, mariadb-dump)."})]);
        });
      }
    })];
    function upload(formEl, fields) {
      var data = new FormData();
      Object.keys(fields).forEach(function (k) { data.append(k, fields[k]); });
      data.append("file", formEl.elements.file.files[0]);
      /* The reason goes as X-Reason, as with every other change. */
      var reason = formEl.elements.reason ? formEl.elements.reason.value.trim() : "";
      return api("POST", formEl.id === "restore-form" ? "/db/restore" : "/db/import", {form: data, reason: reason});
    }
    function result(box, kind, kids) {
      clear(box);
      box.className = "result " + kind;
      add(box, kids);
      box.scrollIntoView({block: "nearest"});
    }
    function picked(formEl, box) {
      if (formEl.elements.file.files.length) return formEl.elements.file.files[0];
      result(box, "bad", "Choose a file first.");
      return null;
    }
    var restoreForm = $("restore-form"), restoreBox = $("restore-result");
    restoreForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var file = picked(restoreForm, restoreBox);
      if (!file || !canWrite()) return;
      busy(true);
      result(restoreBox, "", "Checking " + file.name + "…");
      upload(restoreForm, {dry_run: "true"}).then(function (r) {
        if (!r.ok) { result(restoreBox, "bad", [el("b", {text: "This file cannot be restored. "}), problem(r)]); return; }
        result(restoreBox, "good", [
          el("p", {}, [el("b", {text: "The file is a valid backup of this database "}), "(" + file.name + ", " + r.data.bytes + " bytes). Nothing was changed yet."]),
          el("p", {text: "Restoring replaces the whole database with this file; what was written since it was taken is lost. The current database is kept beside it as a .pre-restore file."}),
          el("div", {class: "actions"}, [
            el("button", {type: "button", class: "danger", id: "restore-now", text: "Restore now", on: {click: function () {
              busy(true);
              result(restoreBox, "", "Restoring " + file.name + "…");
              upload(restoreForm, {dry_run: "false"}).then(function (r2) {
                if (r2.ok && r2.data.restored) {
                  result(restoreBox, "good", [el("b", {text: "Restored. "}), "The database is now " + file.name + " (" + r2.data.bytes + " bytes). Pages open elsewhere show the old data until they are reloaded."]);
                } else {
                  result(restoreBox, "bad", [el("b", {text: "Not restored. "}), r2.ok ? "The server restored nothing." : problem(r2)]);
                }
              }).finally(function () { busy(false); });
            }}}),
            el("button", {type: "button", text: "Cancel", on: {click: function () { clear(restoreBox); restoreForm.reset(); }}})])]);
      }).finally(function () { busy(false); });
    });
    var importForm = $("import-form"), importBox = $("import-result");
    importForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var file = picked(importForm, importBox);
      if (!file || !canWrite()) return;
      var mode = importForm.elements.mode.value;
      result(importBox, "", [
        el("p", {text: mode === "replace" ? "Import " + file.name + ", replacing the rows of every table it holds?" :
                                            "Import " + file.name + ", adding its rows to the tables?"}),
        el("div", {class: "actions"}, [
          el("button", {type: "button", class: mode === "replace" ? "danger" : "primary", id: "import-now", text: "Yes, import", on: {click: function () {
            busy(true);
            result(importBox, "", "Importing " + file.name + "…");
            upload(importForm, {mode: mode}).then(function (r) {
              if (!r.ok) { result(importBox, "bad", [el("b", {text: "Nothing was imported. "}), problem(r)]); return; }
              var rows = Object.keys(r.data.imported || {}).map(function (t) {
                var n = r.data.imported[t];
                return el("li", {text: t + ": " + n + (n === 1 ? " row" : " rows")});
              });
              Object.keys(r.data.skipped || {}).forEach(function (t) { rows.push(el("li", {class: "muted", text: t + ": skipped (" + r.data.skipped[t] + ")"})); });
              result(importBox, "good", [el("b", {text: "Imported."}), el("ul", {}, rows)]);
            }).finally(function () { busy(false); });
          }}}),
          el("button", {type: "button", text: "Cancel", on: {click: function () { clear(importBox); }}})])]);
    });
    return Promise.all(jobs);
  };

  pages.message = function () { return Promise.resolve(); };

  /* -- start --------------------------------------------------------------- */
  showWho();
  if (!AUTH && !userName() && D.page !== "message") askName();
  var run = pages[D.page] || pages.message;
  Promise.resolve().then(run).catch(function (err) {
    flash("The page could not load: " + err);
  }).finally(function () { busy(false); });
})();
