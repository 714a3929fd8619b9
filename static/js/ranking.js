/* The ranking control: put response letters in order per criterion, by dragging (Sortable.js),
   clicking, or the keyboard alone; writes tie groups of handles into each criterion's hidden input.
   No framework. The server checks everything again; this only makes it quick and clear. */
(function () {
  "use strict";

  function strings(root) {
    var node = root.querySelector("#rank-strings");
    return node ? JSON.parse(node.textContent) : {};
  }

  function fill(template, values) {
    return (template || "").replace(/%\((\w+)\)s/g, function (_, key) { return values[key]; });
  }

  function parts(fieldset) {
    return {
      ranked: fieldset.querySelector(".ranked"),
      tray: fieldset.querySelector(".tray"),
      input: fieldset.querySelector("input[type=hidden]"),
      ties: fieldset.closest("#work").dataset.ties === "yes",
      text: strings(fieldset.closest("#work")),
    };
  }

  // Reads the order on screen back into tie groups, numbers the places, and fills the input.
  function update(fieldset) {
    var p = parts(fieldset);
    var groups = [];
    var place = 0;
    Array.prototype.forEach.call(p.ranked.children, function (token, index) {
      var tied = p.ties && index > 0 && token.dataset.tie === "1";
      if (!tied) { groups.push([]); place = index + 1; }
      token.dataset.tie = tied ? "1" : "0";
      groups[groups.length - 1].push(token.dataset.handle);
      token.querySelector(".pos").textContent = tied ? place + "=" : String(place);
      var tie = token.querySelector(".tie");
      if (tie) { tie.setAttribute("aria-pressed", tied ? "true" : "false"); }
      token.setAttribute("aria-label", fill(tied ? p.text.tied : p.text.placed,
        {letter: token.dataset.letter, position: place}));
    });
    Array.prototype.forEach.call(p.tray.children, function (token) {
      token.dataset.tie = "0";
      token.querySelector(".pos").textContent = "";
      token.setAttribute("aria-label", fill(p.text.notPlaced, {letter: token.dataset.letter}));
    });
    p.input.value = JSON.stringify(groups);
    var total = p.ranked.children.length + p.tray.children.length;
    fieldset.querySelector(".count").textContent = p.ranked.children.length + "/" + total;
    fieldset.classList.toggle("complete", p.tray.children.length === 0);
    var panel = fieldset.closest(".rank-panel");
    remember(panel);
    panel.querySelector(".sheet-status").textContent = Array.prototype.map.call(
      panel.querySelectorAll("fieldset.criterion .count"), function (c) { return c.textContent; }).join(" · ");
  }

  // Placements survive a reload or a return later: kept in this browser for the screen's
  // assignment only (its submit address), as handles, which say nothing about the systems.
  var STORE = "evalsite-ranking";

  function remember(panel) {
    if (panel.dataset.restoring) { return; }
    var state = {};
    panel.querySelectorAll("fieldset.criterion").forEach(function (fieldset) {
      state[fieldset.dataset.criterion] = JSON.parse(fieldset.querySelector("input[type=hidden]").value);
    });
    try {
      window.localStorage.setItem(STORE, JSON.stringify({action: panel.getAttribute("action"), state: state}));
    } catch (e) { /* storage full or blocked: placements just do not survive a reload */ }
  }

  function restore(panel) {
    var saved;
    try { saved = JSON.parse(window.localStorage.getItem(STORE) || "null"); } catch (e) { saved = null; }
    if (!saved || saved.action !== panel.getAttribute("action")) { return; }
    panel.querySelectorAll("fieldset.criterion").forEach(function (fieldset) {
      var p = parts(fieldset);
      (saved.state[fieldset.dataset.criterion] || []).forEach(function (group) {
        group.forEach(function (handle, i) {
          var token = p.tray.querySelector('.token[data-handle="' + CSS.escape(handle) + '"]');
          if (!token) { return; }
          placeAt(token, p.ranked, p.ranked.children.length);
          token.dataset.tie = i > 0 ? "1" : "0";
        });
      });
    });
  }

  function setSheet(work, open) {
    var panel = work.querySelector(".rank-panel");
    var toggle = panel.querySelector(".sheet-toggle");
    panel.classList.toggle("collapsed", !open);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    toggle.textContent = strings(work)[open ? "hide" : "show"];
  }

  function toTray(token, tray) {
    // Unplaced letters go back in alphabetical order, where the eye expects them.
    var after = Array.prototype.find.call(tray.children, function (t) { return t.dataset.letter > token.dataset.letter; });
    tray.insertBefore(token, after || null);
  }

  function placeAt(token, ranked, index) {
    var others = Array.prototype.filter.call(ranked.children, function (t) { return t !== token; });
    index = Math.max(0, Math.min(index, others.length));
    token.dataset.tie = "0";
    ranked.insertBefore(token, others[index] || null);
  }

  function onKey(event) {
    var token = event.target.closest(".token");
    if (!token || event.altKey || event.ctrlKey || event.metaKey) { return; }
    var fieldset = token.closest("fieldset.criterion");
    var p = parts(fieldset);
    var inRanked = token.parentElement === p.ranked;
    var siblings = Array.prototype.slice.call(token.parentElement.children);
    var index = siblings.indexOf(token);
    var key = event.key;
    if (/^[1-9]$/.test(key)) {
      placeAt(token, p.ranked, Number(key) - 1);
    } else if ((key === "Enter" || key === " ") && !inRanked) {
      placeAt(token, p.ranked, p.ranked.children.length);
    } else if (key === "ArrowUp" && inRanked && index > 0) {
      placeAt(token, p.ranked, index - 1);
    } else if (key === "ArrowDown" && inRanked && index < siblings.length - 1) {
      placeAt(token, p.ranked, index + 1);
    } else if ((key === "Delete" || key === "Backspace" || key === "0") && inRanked) {
      toTray(token, p.tray);
    } else if ((key === "=" || key === "t") && inRanked && p.ties && index > 0) {
      token.dataset.tie = token.dataset.tie === "1" ? "0" : "1";
    } else if (key === "ArrowLeft" || key === "ArrowRight") {
      var next = siblings[index + (key === "ArrowLeft" ? -1 : 1)];
      if (next) { next.focus(); }
      event.preventDefault();
      return;
    } else {
      return;
    }
    event.preventDefault();
    update(fieldset);
    token.focus();
  }

  function onClick(event) {
    var token = event.target.closest(".token");
    if (!token) { return; }
    var fieldset = token.closest("fieldset.criterion");
    var p = parts(fieldset);
    if (event.target.closest(".unplace")) {
      toTray(token, p.tray);
    } else if (event.target.closest(".tie")) {
      token.dataset.tie = token.dataset.tie === "1" ? "0" : "1";
    } else if (token.parentElement === p.tray) {
      placeAt(token, p.ranked, p.ranked.children.length);
    } else {
      return;
    }
    update(fieldset);
    token.focus();
  }

  function setup(root) {
    var work = root.id === "work" ? root : root.querySelector && root.querySelector("#work");
    if (!work || work.dataset.ready) { return; }
    work.dataset.ready = "1";
    var panel = work.querySelector(".rank-panel");
    panel.dataset.restoring = "1";
    restore(panel);
    work.querySelectorAll("fieldset.criterion").forEach(function (fieldset) {
      var p = parts(fieldset);
      if (window.Sortable) {
        var options = {
          group: "rank-" + fieldset.dataset.criterion, animation: 120,
          filter: "button", preventOnFilter: false,
          onEnd: function (event) { event.item.dataset.tie = "0"; update(fieldset); event.item.focus(); },
        };
        window.Sortable.create(p.ranked, options);
        window.Sortable.create(p.tray, Object.assign({}, options, {sort: false}));
      }
      fieldset.addEventListener("keydown", onKey);
      fieldset.addEventListener("click", onClick);
      update(fieldset);
    });
    delete panel.dataset.restoring;
    var toggle = work.querySelector(".sheet-toggle");
    toggle.addEventListener("click", function () {
      setSheet(work, work.querySelector(".rank-panel").classList.contains("collapsed"));
    });
    // On a phone the ranking starts lowered, so that the post and the responses can be read first.
    if (window.matchMedia("(max-width: 900px)").matches) { setSheet(work, false); }
    if (root.id === "work") {
      // A new item was swapped in: start reading from its top, and keep keyboard focus on it.
      window.scrollTo(0, 0);
      work.querySelector("#work-title").focus({preventScroll: true});
    }
  }

  // Refuse to send an incomplete ranking at once, in place; the server refuses it too.
  document.addEventListener("htmx:confirm", function (event) {
    var form = event.detail.elt;
    if (!form.matches || !form.matches("form.rank-panel")) { return; }
    var incomplete = form.querySelector("fieldset.criterion:not(.complete)");
    if (incomplete) {
      event.preventDefault();
      var message = form.querySelector("#rank-message");
      message.innerHTML = "";
      var p = document.createElement("p");
      p.className = "notice error";
      p.textContent = strings(form.closest("#work")).incomplete;
      message.appendChild(p);
      setSheet(form.closest("#work"), true);
      var first = incomplete.querySelector(".tray .token");
      if (first) { first.focus(); }
    }
  });

  if (window.htmx) {
    window.htmx.onLoad(setup);
  } else {
    document.addEventListener("DOMContentLoaded", function () { setup(document); });
  }
})();
