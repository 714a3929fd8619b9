/* The ranking screen: read the responses in two panes (one on a phone), rank them per criterion by
   keys, dragging (Sortable.js) or clicks, and report how each response was read. No framework.
   Placements and reading are kept per screen (the assignment's public id) in this browser, so a
   reload resumes and a second tab never wipes the first. The server checks everything again. */
(function () {
  "use strict";

  var STORE = "evalsite-screen:";
  var KEEP_MS = 14 * 24 * 3600 * 1000;
  var TICK_MS = 500;

  function strings(work) {
    if (!work.rankStrings) {
      var node = work.querySelector("#rank-strings");
      work.rankStrings = node ? JSON.parse(node.textContent) : {};
    }
    return work.rankStrings;
  }

  function fill(template, values) {
    return (template || "").replace(/%\((\w+)\)s/g, function (_, key) { return values[key]; });
  }

  function all(root, selector) { return Array.prototype.slice.call(root.querySelectorAll(selector)); }

  function currentWork() { return document.getElementById("work"); }

  // --- Placements: every placed token carries data-place; equal places are a tie --------------

  function parts(fieldset) {
    var work = fieldset.closest("#work");
    return {
      ranked: fieldset.querySelector(".ranked"),
      tray: fieldset.querySelector(".tray"),
      input: fieldset.querySelector("input[type=hidden]"),
      ties: work.dataset.ties === "yes",
      total: fieldset.querySelectorAll(".token").length,
      text: strings(work),
    };
  }

  function placeOf(token) { return Number(token.dataset.place) || 0; }

  function placed(p) { return Array.prototype.slice.call(p.ranked.children); }

  function sortRanked(p) {
    placed(p).map(function (t, i) { return [placeOf(t), i, t]; })
      .sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; })
      .forEach(function (entry) { p.ranked.appendChild(entry[2]); });
  }

  function used(p, except) {
    var taken = {};
    placed(p).forEach(function (t) { if (t !== except) { taken[placeOf(t)] = true; } });
    return taken;
  }

  // The nearest free place after `from` (then before it); past the end only if all are taken.
  function freeNear(p, from, except) {
    var taken = used(p, except);
    var top = Math.max(p.total, from);
    for (var up = from + 1; up <= top; up++) { if (!taken[up]) { return up; } }
    for (var down = from - 1; down >= 1; down--) { if (!taken[down]) { return down; } }
    return top + 1;
  }

  function firstFree(p) {
    var taken = used(p, null);
    for (var place = 1; ; place++) { if (!taken[place]) { return place; } }
  }

  // Put a token in a place. A response already there swaps with it (or, when the token came from
  // outside the ranking, moves to the nearest free place): a number key sets the place it names.
  function setPlace(token, place, p) {
    place = Math.max(1, place);
    var old = token.parentElement === p.ranked ? placeOf(token) : 0;
    if (old === place) { return; }
    placed(p).forEach(function (other) {
      if (other === token || placeOf(other) !== place) { return; }
      other.dataset.place = String(old || freeNear(p, place, other));
    });
    token.dataset.place = String(place);
    if (token.parentElement !== p.ranked) { p.ranked.appendChild(token); }
    sortRanked(p);
  }

  function unplace(token, p) {
    delete token.dataset.place;
    // Unplaced letters go back in alphabetical order, where the eye expects them.
    var after = Array.prototype.find.call(p.tray.children, function (t) { return t.dataset.letter > token.dataset.letter; });
    p.tray.insertBefore(token, after || null);
  }

  function toggleTie(token, p) {
    if (!p.ties || token.parentElement !== p.ranked) { return; }
    var list = placed(p);
    var above = list[list.indexOf(token) - 1];
    if (!above) { return; }
    if (placeOf(above) === placeOf(token)) {
      var place = placeOf(token) + 1;
      list.forEach(function (other) {
        if (other !== token && placeOf(other) === place) { other.dataset.place = String(freeNear(p, place, other)); }
      });
      token.dataset.place = String(place);
    } else {
      token.dataset.place = String(placeOf(above));
    }
    sortRanked(p);
  }

  // After a drag the order on screen is the ranking: number it again, keeping ties.
  function renumber(p, moved) {
    var previous = null;
    placed(p).forEach(function (token, index) {
      var tied = p.ties && previous && token !== moved && token.dataset.tie === "1";
      token.dataset.place = String(tied ? placeOf(previous) : index + 1);
      previous = token;
    });
    all(p.tray, ".token").forEach(function (t) { delete t.dataset.place; });
  }

  // Reads the places back into tie groups, labels the tokens, and fills the input.
  function update(fieldset) {
    var p = parts(fieldset);
    var groups = [];
    var last = null;
    placed(p).forEach(function (token) {
      var place = placeOf(token);
      var tied = last !== null && place === last;
      if (!tied) { groups.push([]); }
      groups[groups.length - 1].push(token.dataset.handle);
      token.dataset.tie = tied ? "1" : "0";
      token.querySelector(".pos").textContent = tied ? place + "=" : String(place);
      var tie = token.querySelector(".tie");
      if (tie) { tie.setAttribute("aria-pressed", tied ? "true" : "false"); }
      token.setAttribute("aria-label", fill(tied ? p.text.tied : p.text.placed, {letter: token.dataset.letter, position: place}));
      last = place;
    });
    all(p.tray, ".token").forEach(function (token) {
      token.dataset.tie = "0";
      token.querySelector(".pos").textContent = "";
      token.setAttribute("aria-label", fill(p.text.notPlaced, {letter: token.dataset.letter}));
    });
    p.input.value = JSON.stringify(groups);
    fieldset.querySelector(".count").textContent = p.ranked.children.length + "/" + p.total;
    fieldset.classList.toggle("complete", p.tray.children.length === 0);
    var work = fieldset.closest("#work");
    var panel = work.querySelector(".rank-panel");
    panel.querySelector(".sheet-status").textContent = all(panel, "fieldset.criterion .count")
      .map(function (c) { return c.textContent; }).join(" · ");
    save(work);
  }

  // --- Kept per screen in this browser -----------------------------------------------------------

  function storeKey(work) { return STORE + work.dataset.screen; }

  function save(work) {
    if (work.dataset.restoring) { return; }
    var state = {saved: Date.now(), places: {}, reading: work.reading || {}};
    all(work, "fieldset.criterion").forEach(function (fieldset) {
      state.places[fieldset.dataset.criterion] = all(fieldset, ".ranked .token").map(function (t) {
        return [t.dataset.handle, placeOf(t)];
      });
    });
    try { window.localStorage.setItem(storeKey(work), JSON.stringify(state)); } catch (e) { /* full or blocked */ }
  }

  function load(work) {
    try { return JSON.parse(window.localStorage.getItem(storeKey(work)) || "null"); } catch (e) { return null; }
  }

  function forgetOld() {
    try {
      for (var i = window.localStorage.length - 1; i >= 0; i--) {
        var key = window.localStorage.key(i);
        if (key === "evalsite-ranking") { window.localStorage.removeItem(key); continue; }  // the old, per-browser key
        if (!key || key.indexOf(STORE) !== 0) { continue; }
        var state = JSON.parse(window.localStorage.getItem(key) || "{}");
        if (!state.saved || Date.now() - state.saved > KEEP_MS) { window.localStorage.removeItem(key); }
      }
    } catch (e) { /* storage blocked */ }
  }

  function restore(work, saved) {
    if (!saved) { return; }
    all(work, "fieldset.criterion").forEach(function (fieldset) {
      var p = parts(fieldset);
      (saved.places && saved.places[fieldset.dataset.criterion] || []).forEach(function (entry) {
        var token = p.tray.querySelector('.token[data-handle="' + CSS.escape(entry[0]) + '"]');
        if (!token || !(entry[1] > 0)) { return; }
        token.dataset.place = String(entry[1]);
        p.ranked.appendChild(token);
      });
      sortRanked(p);
    });
    var reading = saved.reading || {};
    Object.keys(work.reading).forEach(function (handle) {
      var entry = reading[handle];
      if (!entry) { return; }
      work.reading[handle] = {seconds: Number(entry.seconds) || 0, opened: entry.opened === true,
                              read_to_end: entry.read_to_end === true};
    });
  }

  // --- Reading: panes, marks, time on screen --------------------------------------------------------

  function letters(work) { return all(work, ".rank-panel .read-strip .tab").map(function (b) { return b.dataset.show; }); }

  function article(work, letter) { return work.querySelector('article.response[data-letter="' + letter + '"]'); }

  function panes(work) { return all(work, ".pane"); }

  function shownIn(pane) {
    var node = pane.querySelector("article.response");
    return node ? node.dataset.letter : null;
  }

  function visible(node) {
    if (!node || node.offsetParent === null) { return false; }
    var box = node.getBoundingClientRect();
    return box.bottom > 0 && box.top < window.innerHeight && box.height > 0;
  }

  function show(work, index, letter) {
    var all_ = panes(work);
    var pane = all_[index];
    if (!pane || !article(work, letter)) { return; }
    if (!visible(pane) && index === 1) { pane = all_[0]; index = 0; }  // one pane on a phone
    var other = all_[1 - index];
    var current = shownIn(pane);
    if (current === letter) { mark(work); return; }
    var body = pane.querySelector(".pane-body");
    var node = article(work, letter);
    remember(work, current, body);
    if (other && shownIn(other) === letter) {
      // Already in the other pane: the two swap, so that no response is ever shown twice.
      var otherBody = other.querySelector(".pane-body");
      remember(work, letter, otherBody);
      if (current) { otherBody.appendChild(article(work, current)); recall(work, current, otherBody); }
    } else if (current) {
      work.querySelector(".shelf").appendChild(article(work, current));
    }
    body.appendChild(node);
    recall(work, letter, body);
    all(work, ".pane").forEach(function (p) {
      var here = shownIn(p);
      all(p, ".tab").forEach(function (tab) { tab.setAttribute("aria-pressed", tab.dataset.show === here ? "true" : "false"); });
    });
    see(work);
  }

  function remember(work, letter, body) {
    if (letter) { work.scrolls[letter] = body.scrollTop; }
  }

  function recall(work, letter, body) { body.scrollTop = work.scrolls[letter] || 0; }

  function step(work, index, by) {
    var list = letters(work);
    var pane = panes(work)[index];
    var other = panes(work)[1 - index];
    var at = list.indexOf(shownIn(pane));
    for (var n = 1; n <= list.length; n++) {
      var letter = list[(at + by * n + list.length * n) % list.length];
      // On a wide screen skip the response the other pane already shows.
      if (!(other && visible(other) && shownIn(other) === letter) || list.length <= 2) {
        show(work, index, letter);
        return letter;
      }
    }
    return null;
  }

  // What is on screen now is opened; a pane scrolled to its end (or too short to scroll) is read.
  function see(work) {
    if (document.visibilityState !== "visible") { return; }
    panes(work).forEach(function (pane) {
      var letter = shownIn(pane);
      var body = pane.querySelector(".pane-body");
      if (!letter || !visible(body)) { return; }
      var entry = work.reading[handleOf(work, letter)];
      entry.opened = true;
      if (body.scrollTop + body.clientHeight >= body.scrollHeight - 24) { entry.read_to_end = true; }
    });
    mark(work);
  }

  function handleOf(work, letter) { return article(work, letter).dataset.handle; }

  function mark(work) {
    var text = strings(work);
    letters(work).forEach(function (letter) {
      var entry = work.reading[handleOf(work, letter)];
      all(work, '.tab[data-show="' + letter + '"]').forEach(function (tab) {
        tab.classList.toggle("opened", entry.opened);
        tab.classList.toggle("read", entry.read_to_end);
        tab.setAttribute("aria-label", fill(entry.read_to_end ? text.read : entry.opened ? text.opened : text.response,
                                            {letter: letter}));
      });
    });
    work.querySelector("input[name=reading]").value = JSON.stringify(work.reading);
  }

  function tick(work) {
    var now = performance.now();
    var elapsed = Math.min(now - work.lastTick, 2 * TICK_MS) / 1000;  // a sleeping laptop adds nothing
    work.lastTick = now;
    if (document.visibilityState !== "visible") { return; }
    panes(work).forEach(function (pane) {
      var letter = shownIn(pane);
      if (letter && visible(pane.querySelector(".pane-body"))) {
        var entry = work.reading[handleOf(work, letter)];
        entry.seconds = Math.round((entry.seconds + elapsed) * 10) / 10;
      }
    });
    see(work);
    if ((work.ticks = (work.ticks || 0) + 1) % 10 === 0) { save(work); }
  }

  // --- The panel: current question, picked response, sheet, skip ----------------------------------

  function criteria(work) { return all(work, "fieldset.criterion"); }

  function currentCriterion(work) { return work.querySelector("fieldset.criterion.current") || criteria(work)[0]; }

  function setCriterion(work, fieldset, focus) {
    criteria(work).forEach(function (f) { f.classList.toggle("current", f === fieldset); });
    fieldset.scrollIntoView({block: "nearest"});
    var picked = work.dataset.picked && fieldset.querySelector('.token[data-letter="' + work.dataset.picked + '"]');
    if (picked && focus) { picked.focus({preventScroll: true}); }
  }

  function moveCriterion(work, by) {
    var list = criteria(work);
    var next = list[list.indexOf(currentCriterion(work)) + by];
    if (next) { setCriterion(work, next); }
  }

  // The picked response is the one number keys place. It is marked, not focused, so that Space
  // goes on scrolling the text being read.
  function pick(work, letter) {
    work.dataset.picked = letter;
    all(work, ".token").forEach(function (t) { t.classList.toggle("picked", t.dataset.letter === letter); });
    var token = currentCriterion(work).querySelector('.token[data-letter="' + letter + '"]');
    if (document.activeElement && document.activeElement.closest && document.activeElement.closest(".token")) {
      work.querySelector("#work-title").focus({preventScroll: true});
    }
    if (token) { token.scrollIntoView({block: "nearest"}); }
    return token;
  }

  function setSheet(work, open) {
    var panel = work.querySelector(".rank-panel");
    var toggle = panel.querySelector(".sheet-toggle");
    panel.classList.toggle("collapsed", !open);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    toggle.textContent = strings(work)[open ? "hide" : "show"];
  }

  function askSkip(work, open) {
    var box = work.querySelector(".skip-confirm");
    box.hidden = !open;
    if (open) { box.querySelector(".skip-yes").focus(); }
  }

  // A change made with a key on the current question; a finished question hands on to the next.
  // (focus: the key went to a focused token, as after a Tab walk; keep the focus on it.)
  function changed(work, fieldset, token, wasComplete, focus) {
    update(fieldset);
    if (!wasComplete && fieldset.classList.contains("complete")) {
      var list = criteria(work);
      var next = list.slice(list.indexOf(fieldset) + 1).find(function (f) { return !f.classList.contains("complete"); });
      if (next) {
        setCriterion(work, next, false);
        if (!focus) { return; }
      }
    }
    if (token && focus) { token.focus({preventScroll: true}); }
  }

  function tokenFor(work, event) {
    var token = event.target.closest && event.target.closest(".token");
    if (token) { return token; }
    if (!work.dataset.picked) { return null; }
    return currentCriterion(work).querySelector('.token[data-letter="' + work.dataset.picked + '"]');
  }

  function onKey(event) {
    var work = currentWork();
    if (!work || !work.dataset.ready || event.defaultPrevented) { return; }
    var key = event.key;
    var target = event.target;
    var help = work.querySelector("#keys-help");
    if (help.open) {
      if (key === "?") { help.close(); event.preventDefault(); }
      return;
    }
    if ((key === "Enter") && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      var form = work.querySelector(".rank-panel");
      form.requestSubmit(form.querySelector(".rank-actions .primary"));
      return;
    }
    if (target.closest && target.closest("textarea, input, select")) {
      if (key === "Escape") { target.blur(); work.querySelector("#work-title").focus({preventScroll: true}); }
      return;
    }
    if (event.altKey || event.ctrlKey || event.metaKey) { return; }
    if (key === "Escape") { askSkip(work, false); return; }
    var lower = key.length === 1 ? key.toLowerCase() : key;
    var list = letters(work);
    var focus = !!(target.closest && target.closest(".token"));
    var token;
    if (key === "?") {
      help.showModal();
    } else if (key.length === 1 && list.indexOf(key.toUpperCase()) >= 0 && /[a-z]/i.test(key)) {
      show(work, event.shiftKey ? 1 : 0, key.toUpperCase());
      pick(work, key.toUpperCase());
    } else if (/^[1-9]$/.test(key)) {
      token = tokenFor(work, event);
      if (!token) { return; }
      var fieldset = token.closest("fieldset.criterion");
      var wasComplete = fieldset.classList.contains("complete");
      setPlace(token, Number(key), parts(fieldset));
      work.dataset.picked = token.dataset.letter;
      changed(work, fieldset, token, wasComplete, focus);
    } else if (key === "0" || key === "Delete" || key === "Backspace") {
      token = tokenFor(work, event);
      if (!token || !token.dataset.place) { return; }
      unplace(token, parts(token.closest("fieldset.criterion")));
      changed(work, token.closest("fieldset.criterion"), token, true, focus);
    } else if ((key === "ArrowUp" || key === "ArrowDown") && (token = tokenFor(work, event)) && token.dataset.place) {
      var p = parts(token.closest("fieldset.criterion"));
      var neighbours = placed(p);
      var beside = neighbours[neighbours.indexOf(token) + (key === "ArrowUp" ? -1 : 1)];
      if (beside) { setPlace(token, placeOf(beside), p); }
      changed(work, token.closest("fieldset.criterion"), token, true, focus);
    } else if ((key === "=" || lower === "t") && (token = tokenFor(work, event))) {
      toggleTie(token, parts(token.closest("fieldset.criterion")));
      changed(work, token.closest("fieldset.criterion"), token, true, focus);
    } else if ((key === "Enter" || key === " ") && target.closest && target.closest(".tray .token")) {
      token = target.closest(".token");
      var f = token.closest("fieldset.criterion");
      var q = parts(f);
      var complete = f.classList.contains("complete");
      setPlace(token, firstFree(q), q);
      changed(work, f, token, complete, true);
    } else if ((key === "ArrowLeft" || key === "ArrowRight") && target.closest && target.closest(".token")) {
      token = target.closest(".token");
      var siblings = Array.prototype.slice.call(token.parentElement.children);
      var next = siblings[siblings.indexOf(token) + (key === "ArrowLeft" ? -1 : 1)];
      if (next) { next.focus(); }
    } else if (key === "[" || key === "]") {
      moveCriterion(work, key === "[" ? -1 : 1);
    } else if (lower === "n" || lower === "p") {
      var letter = step(work, 0, lower === "n" ? 1 : -1);
      if (letter) { pick(work, letter); }
    } else if (lower === "o") {
      var post = work.querySelector("details.post");
      post.open = !post.open;
    } else if (key === " " && !(target.closest && target.closest("button, summary, a, .token"))) {
      var body = panes(work)[0].querySelector(".pane-body");
      body.scrollBy({top: (event.shiftKey ? -0.85 : 0.85) * body.clientHeight});
    } else if (lower === "w") {
      setSheet(work, true);
      work.querySelector("textarea[name=rationale]").focus();
    } else if (lower === "s") {
      askSkip(work, true);
    } else if (lower === "r") {
      setSheet(work, true);
      var flag = work.querySelector("details.flag");
      flag.open = true;
      flag.querySelector("textarea").focus();
    } else {
      return;
    }
    event.preventDefault();
  }

  function onClick(event) {
    var work = currentWork();
    if (!work || !work.contains(event.target)) { return; }
    var tab = event.target.closest(".tab[data-show]");
    if (tab) {
      var pane = tab.closest(".pane");
      var index = pane ? Number(pane.dataset.pane) : (event.shiftKey ? 1 : 0);
      if (!pane && (shownIn(panes(work)[1]) === tab.dataset.show) && visible(panes(work)[1])) { index = 1; }
      show(work, index, tab.dataset.show);
      work.dataset.picked = tab.dataset.show;
      if (!pane && window.matchMedia("(max-width: 900px)").matches) { setSheet(work, false); }
      var body = panes(work)[index].querySelector(".pane-body");
      if (!visible(body)) { body.scrollIntoView({block: "nearest"}); }
      return;
    }
    var stepper = event.target.closest(".step[data-step]");
    if (stepper) { step(work, Number(stepper.closest(".pane").dataset.pane), Number(stepper.dataset.step)); return; }
    if (event.target.closest(".help-open")) { work.querySelector("#keys-help").showModal(); return; }
    if (event.target.closest(".skip-ask")) { askSkip(work, true); return; }
    if (event.target.closest(".skip-no")) { askSkip(work, false); return; }
    if (event.target.closest(".sheet-toggle")) {
      setSheet(work, work.querySelector(".rank-panel").classList.contains("collapsed"));
      return;
    }
    var token = event.target.closest(".token");
    if (!token) { return; }
    var fieldset = token.closest("fieldset.criterion");
    var p = parts(fieldset);
    var wasComplete = fieldset.classList.contains("complete");
    if (event.target.closest(".unplace")) {
      unplace(token, p);
    } else if (event.target.closest(".tie")) {
      toggleTie(token, p);
    } else if (token.parentElement === p.tray) {
      setPlace(token, firstFree(p), p);
    } else {
      work.dataset.picked = token.dataset.letter;
      if (!fieldset.classList.contains("current")) { setCriterion(work, fieldset, false); }
      return;
    }
    work.dataset.picked = token.dataset.letter;
    if (!fieldset.classList.contains("current")) { criteria(work).forEach(function (f) { f.classList.toggle("current", f === fieldset); }); }
    update(fieldset);
    if (!wasComplete) { token.focus({preventScroll: true}); }
  }

  // A swipe across a pane on a phone shows the next or previous response.
  function swipes(work) {
    panes(work).forEach(function (pane) {
      var start = null;
      var body = pane.querySelector(".pane-body");
      body.addEventListener("touchstart", function (event) {
        var t = event.changedTouches[0];
        start = {x: t.clientX, y: t.clientY};
      }, {passive: true});
      body.addEventListener("touchend", function (event) {
        if (!start) { return; }
        var t = event.changedTouches[0];
        var dx = t.clientX - start.x;
        var dy = t.clientY - start.y;
        start = null;
        if (Math.abs(dx) > 60 && Math.abs(dx) > 2 * Math.abs(dy)) { step(work, Number(pane.dataset.pane), dx < 0 ? 1 : -1); }
      }, {passive: true});
      body.addEventListener("scroll", function () { see(work); }, {passive: true});
    });
  }

  function setup(root) {
    var work = root.id === "work" ? root : root.querySelector && root.querySelector("#work");
    if (!work || work.dataset.ready) { return; }
    var phone = window.matchMedia("(max-width: 900px)").matches;
    work.reading = {};
    work.scrolls = {};
    all(work, "article.response").forEach(function (node) {
      work.reading[node.dataset.handle] = {seconds: 0, opened: false, read_to_end: false};
    });
    work.dataset.restoring = "1";
    restore(work, load(work));
    criteria(work).forEach(function (fieldset) {
      var p = parts(fieldset);
      if (window.Sortable) {
        var options = {
          group: "rank-" + fieldset.dataset.criterion, animation: 120,
          filter: "button", preventOnFilter: false,
          onEnd: function (event) {
            event.item.dataset.tie = "0";
            renumber(p, event.item);
            update(fieldset);  // (no focus: its buttons would widen it under the pointer)
          },
        };
        window.Sortable.create(p.ranked, options);
        window.Sortable.create(p.tray, Object.assign({}, options, {sort: false}));
      }
      update(fieldset);
    });
    delete work.dataset.restoring;
    swipes(work);
    if (phone) {
      setSheet(work, false);  // on a phone the ranking starts lowered, so that the texts can be read first
      work.querySelector("details.post").open = false;
    }
    work.lastTick = performance.now();
    work.dataset.ready = "1";
    see(work);
    var timer = window.setInterval(function () {
      if (!work.isConnected) { window.clearInterval(timer); return; }
      tick(work);
    }, TICK_MS);
    if (root.id === "work") {
      // A new item was swapped in: start reading from its top, and keep keyboard focus on it.
      window.scrollTo(0, 0);
      work.querySelector("#work-title").focus({preventScroll: true});
    }
  }

  document.addEventListener("keydown", onKey);
  document.addEventListener("click", onClick);
  document.addEventListener("visibilitychange", function () {
    var work = currentWork();
    if (work && work.dataset.ready) { work.lastTick = performance.now(); save(work); }
  });
  window.addEventListener("pagehide", function () {
    var work = currentWork();
    if (work && work.dataset.ready) { save(work); }
  });

  // Refuse to send an incomplete ranking at once, in place; the server refuses it too.
  document.addEventListener("htmx:confirm", function (event) {
    var form = event.detail.elt;
    if (!form.matches || !form.matches("form.rank-panel")) { return; }
    var work = form.closest("#work");
    mark(work);
    var submitter = event.detail.triggerEvent && event.detail.triggerEvent.submitter;
    if (submitter && submitter.closest(".skip-confirm, .flag")) { return; }
    var incomplete = form.querySelector("fieldset.criterion:not(.complete)");
    if (incomplete) {
      event.preventDefault();
      var message = form.querySelector("#rank-message");
      message.innerHTML = "";
      var p = document.createElement("p");
      p.className = "notice error";
      p.textContent = strings(work).incomplete;
      message.appendChild(p);
      setSheet(work, true);
      setCriterion(work, incomplete, false);
      var first = incomplete.querySelector(".tray .token");
      if (first) { first.focus(); }
    }
  });

  // A ranking that was stored leaves nothing to keep for its screen.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var form = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!form || !form.matches || !form.matches("form.rank-panel") || event.detail.xhr.status !== 200) { return; }
    var target = event.detail.target;
    if (target && target.id === "work") {
      try { window.localStorage.removeItem(storeKey(target)); } catch (e) { /* blocked */ }
    }
  });

  forgetOld();
  if (window.htmx) {
    window.htmx.onLoad(setup);
  } else {
    document.addEventListener("DOMContentLoaded", function () { setup(document); });
  }
})();
