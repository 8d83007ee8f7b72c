/*
 * Guichet chat widget: paste <script src="https://assistant.example.fr/widget.js" defer></script> in a page.
 * A server that answers for several communes is told which one by data-commune="<identifier>" on that tag.
 *
 * Adds a launcher button and a chat panel (in a shadow root, so the page's styles and the widget's don't mix).
 * Everything comes from the Guichet server that serves this file: no third-party asset, no cookie, nothing
 * stored in the browser. Answers stream in as a draft (hidden from screen readers), then the checked answer
 * replaces the draft and is announced once, with its sources.
 */
(function () {
  "use strict";
  if (window.__guichetWidget) return;
  window.__guichetWidget = true;

  var script = document.currentScript;
  var base = new URL(".", script ? script.src : window.location.href).href;
  var commune = script ? script.getAttribute("data-commune") : null;
  // Every request names the commune when the page says which (X-Guichet-Commune), else the server's host does.
  function withCommune(headers) {
    if (commune) headers["X-Guichet-Commune"] = commune;
    return headers;
  }
  var config = null;
  var sessionId = null;
  var busy = false;

  var host = document.createElement("div");
  host.id = "guichet-widget";
  var root = host.attachShadow({ mode: "open" });

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "hidden") node.hidden = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  root.appendChild(el("link", { rel: "stylesheet", href: base + "widget.css" }));
  var launcher = el("button", {
    type: "button", class: "launcher", "aria-expanded": "false", "aria-controls": "guichet-panel",
  }, [el("span", { "aria-hidden": "true", class: "launcher-icon", text: "?" }),
      el("span", { text: "Une question ? Assistant de la mairie (IA)" })]);
  var title = el("h2", { id: "guichet-title", text: "Assistant de la mairie" });
  var closeButton = el("button", { type: "button", class: "close", "aria-label": "Fermer l'assistant" },
    [el("span", { "aria-hidden": "true", text: "×" })]);
  var about = el("a", { href: base + "a-propos", target: "_blank", rel: "noopener" },
    [document.createTextNode("Comment il fonctionne et ce qui est conservé"),
     el("span", { class: "visually-hidden", text: " (nouvelle fenêtre)" })]);
  var disclosure = el("p", { class: "disclosure", id: "guichet-disclosure" }, [
    el("strong", { text: "Vous échangez avec un assistant automatique (intelligence artificielle), " +
      "pas avec un agent de la mairie. " }),
    document.createTextNode("Il répond à partir des documents officiels de la mairie et de Service-Public.fr, " +
      "en citant ses sources. Il ne prend aucune décision sur votre situation. " +
      "N'indiquez pas de données personnelles. "),
    about,
  ]);
  // Focusable so that a keyboard user can scroll a long conversation.
  var log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation", tabindex: "0" });
  var status = el("p", { class: "status", role: "status" });
  var question = el("textarea", {
    id: "guichet-question", name: "question", rows: "2", maxlength: "600",
    "aria-describedby": "guichet-hint", autocomplete: "off",
  });
  var hint = el("p", { id: "guichet-hint", class: "hint",
    text: "Entrée pour envoyer, Maj + Entrée pour aller à la ligne. 600 caractères au plus." });
  var send = el("button", { type: "submit", class: "send", text: "Envoyer" });
  var reset = el("button", { type: "button", class: "reset", text: "Nouvelle question" });
  var form = el("form", { class: "ask" }, [
    el("label", { for: "guichet-question", text: "Votre question" }), question, hint,
    el("div", { class: "actions" }, [reset, send]),
  ]);
  var panel = el("section", {
    id: "guichet-panel", class: "panel", role: "dialog", "aria-modal": "false",
    "aria-labelledby": "guichet-title", "aria-describedby": "guichet-disclosure", hidden: true,
  }, [el("header", {}, [title, closeButton]), disclosure, log, status, form]);
  root.appendChild(launcher);
  root.appendChild(panel);

  function applyConfig(cfg) {
    config = cfg;
    title.textContent = cfg.title || title.textContent;
    launcher.lastChild.textContent = "Une question ? " + (cfg.title || "Assistant de la mairie") + " (IA)";
    question.setAttribute("maxlength", String(cfg.max_question_chars || 600));
    hint.textContent = "Entrée pour envoyer, Maj + Entrée pour aller à la ligne. " +
      (cfg.max_question_chars || 600) + " caractères au plus.";
    var colors = cfg.colors || {};
    if (colors.primary) host.style.setProperty("--guichet-primary", colors.primary);
    if (colors.on_primary) host.style.setProperty("--guichet-on-primary", colors.on_primary);
  }

  function loadConfig() {
    return fetch(base + "api/v1/widget/config", { headers: withCommune({}) }).then(function (r) { return r.json(); })
      .then(applyConfig).catch(function () { applyConfig({}); });
  }

  function welcome() {
    if (config && config.welcome) addMessage("bot", config.welcome);
  }

  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.hidden = true;
    if (!log.childElementCount) welcome();
    question.focus();
  }

  function close() {
    panel.hidden = true;
    launcher.hidden = false;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  function addMessage(who, text) {
    var message = el("div", { class: "message " + who }, [
      el("p", { class: "who visually-hidden", text: who === "user" ? "Vous :" : "Assistant :" }),
      el("p", { class: "text", text: text }),
    ]);
    log.appendChild(message);
    message.scrollIntoView({ block: "nearest" });
    return message;
  }

  function sourcesBlock(citations) {
    if (!citations.length) return null;
    var list = el("ul", {}, citations.map(function (c) {
      var link = c.url
        ? el("a", { href: c.url, target: "_blank", rel: "noopener" },
            [document.createTextNode(c.title), el("span", { class: "visually-hidden", text: " (nouvelle fenêtre)" })])
        : el("span", { text: c.title });
      return el("li", {}, [
        link,
        c.date ? el("span", { class: "date", text: " — mis à jour le " + c.date }) : null,
        el("details", {}, [
          el("summary", { text: "Voir le passage officiel" }),
          el("blockquote", { text: c.quote }),
        ]),
      ]);
    }));
    return el("div", { class: "sources" }, [el("p", { class: "label", text: "Sources :" }), list]);
  }

  function contactBlock(body) {
    var outcome = body.outcome;
    var answered = outcome === "answered" || outcome === "answered_from_quote";
    var needsContact = !answered && outcome !== "smalltalk_greeting" && outcome !== "refused_empty_question";
    // The town's message for this outcome may already name the contact: don't say it twice.
    if (!needsContact || !config || !config.contact || body.answer.indexOf(config.contact) !== -1) return null;
    return el("p", { class: "contact" }, [el("strong", { text: "Pour aller plus loin : " }),
      document.createTextNode("contactez " + config.contact + ".")]);
  }

  function feedbackBlock(turnId) {
    var reasons = (config && config.feedback_reasons) || {};
    var thanks = el("p", { class: "thanks", role: "status" });
    var choices = el("div", { class: "reasons", hidden: true });
    var group = el("div", { class: "feedback", role: "group", "aria-label": "Votre avis sur cette réponse" });
    var prompt = el("p", { text: "Cette réponse vous a-t-elle été utile ?" });
    var yes = el("button", { type: "button", "aria-pressed": "false", text: "Oui" });
    var no = el("button", { type: "button", "aria-pressed": "false", text: "Non" });

    function submit(useful, reason) {
      group.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      fetch(base + "api/v1/feedback", {
        method: "POST", headers: withCommune({ "Content-Type": "application/json" }),
        body: JSON.stringify({ session_id: sessionId, turn_id: turnId, useful: useful, reason: reason }),
      }).then(function (r) { return r.json(); }).then(function (body) {
        thanks.textContent = body.message || body.error || "Merci pour votre avis.";
      }).catch(function () { thanks.textContent = "Votre avis n'a pas pu être envoyé."; });
      choices.hidden = true;
      question.focus();
    }

    function choose(useful) {
      yes.setAttribute("aria-pressed", String(useful));
      no.setAttribute("aria-pressed", String(!useful));
      var keys = useful ? ["no_visit_needed", "clear"] : ["not_clear", "wrong", "incomplete", "not_answered"];
      choices.textContent = "";
      choices.appendChild(el("p", { text: "Pouvez-vous préciser ? (facultatif)" }));
      keys.concat(["other"]).forEach(function (key) {
        var button = el("button", { type: "button", text: reasons[key] || key });
        button.addEventListener("click", function () { submit(useful, key); });
        choices.appendChild(button);
      });
      var skip = el("button", { type: "button", text: "Envoyer sans préciser" });
      skip.addEventListener("click", function () { submit(useful, null); });
      choices.appendChild(skip);
      choices.hidden = false;
      choices.querySelector("button").focus();
    }

    yes.addEventListener("click", function () { choose(true); });
    no.addEventListener("click", function () { choose(false); });
    group.appendChild(prompt);
    group.appendChild(yes);
    group.appendChild(no);
    group.appendChild(choices);
    group.appendChild(thanks);
    return group;
  }

  function showFinal(draft, body) {
    var message = el("div", { class: "message bot" }, [
      el("p", { class: "who visually-hidden", text: "Assistant :" }),
      el("p", { class: "text", text: body.answer }),
      sourcesBlock(body.citations || []),
      contactBlock(body),
    ]);
    if (draft) draft.remove();
    log.appendChild(message);
    if (body.outcome !== "smalltalk_greeting" && body.outcome !== "refused_empty_question") {
      message.appendChild(feedbackBlock(body.turn_id));
    }
    message.scrollIntoView({ block: "nearest" });
  }

  function showError(draft, text) {
    if (draft) draft.remove();
    addMessage("bot error", text);
  }

  // Server-Sent Events over fetch (EventSource cannot POST): yields {event, data} objects.
  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return;
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
        var parts = buffer.split("\n\n");
        buffer = parts.pop();
        parts.forEach(function (part) {
          var event = "message", data = "";
          part.split("\n").forEach(function (line) {
            if (line.indexOf("event:") === 0) event = line.slice(6).trim();
            else if (line.indexOf("data:") === 0) data += line.slice(5).trim();
          });
          if (data) onEvent(event, JSON.parse(data));
        });
        return pump();
      });
    }
    return pump();
  }

  function ask(text) {
    busy = true;
    form.setAttribute("aria-busy", "true");
    status.textContent = "L'assistant cherche dans les documents…";
    addMessage("user", text);
    var draft = el("div", { class: "message bot draft", "aria-hidden": "true" }, [
      el("p", { class: "text" }), el("p", { class: "writing", text: "Rédaction en cours, vérification à suivre…" }),
    ]);
    var gotFinal = false;
    log.appendChild(draft);
    var headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
    // Lets a reverse proxy send a conversation to the same worker (sessions live in a worker's memory).
    if (sessionId) headers["X-Guichet-Session"] = sessionId;
    return fetch(base + "api/v1/turn/stream", {
      method: "POST",
      headers: withCommune(headers),
      body: JSON.stringify({ text: text, channel: "web", session_id: sessionId }),
    }).then(function (response) {
      if (!response.ok) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          var wait = response.headers.get("Retry-After");
          showError(draft, (body.error || "Le service ne répond pas.") +
            (wait ? " Vous pourrez réessayer dans " + wait + " s." : ""));
        });
      }
      return readEvents(response, function (event, data) {
        if (event === "meta") sessionId = data.session_id;
        else if (event === "delta") {
          draft.firstChild.textContent += data.text;
          draft.scrollIntoView({ block: "nearest" });
        } else if (event === "final") { gotFinal = true; showFinal(draft, data); }
        else if (event === "error") { gotFinal = true; showError(draft, data.error); }
      }).then(function () {
        if (!gotFinal) showError(draft, "La réponse a été interrompue. Merci de réessayer.");
      });
    }).catch(function () {
      showError(draft, "Le service est injoignable pour le moment. Merci de réessayer plus tard.");
    }).then(function () {
      busy = false;
      form.removeAttribute("aria-busy");
      status.textContent = "";
    });
  }

  function newConversation() {
    sessionId = null;
    log.textContent = "";
    welcome();
    status.textContent = "Nouvelle conversation.";
    question.value = "";
    question.focus();
  }

  launcher.addEventListener("click", open);
  closeButton.addEventListener("click", close);
  reset.addEventListener("click", newConversation);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") close();
  });
  question.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = question.value.trim();
    if (!text || busy) return;
    question.value = "";
    ask(text);
  });

  function mount() {
    document.body.appendChild(host);
    loadConfig();
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
