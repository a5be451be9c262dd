/* QuantTrade live connection: one WebSocket to /ws per page (SPEC §3).
 *
 * - reconnects by itself with exponential backoff and full jitter, and resubscribes every topic;
 * - answers the server's {"type":"ping"} with {"type":"pong"};
 * - treats a silent socket (no message for 2.5 ping intervals, at least 10 s) as dead and reconnects;
 * - drives the connection indicator in the top bar (connected / reconnecting / offline).
 *
 * Pages use window.QT.live.subscribe(topic, handler) and read exact decimal strings through
 * QT.fmt (numbers are formatted from their string form, never rounded through floats).
 */
(function () {
  "use strict";

  var i18nEl = document.getElementById("qt-i18n");
  var T = i18nEl ? i18nEl.dataset : {};

  function t(key, fallback) {
    return (T && T[key]) || fallback;
  }

  // ---- number formatting on decimal strings -------------------------------------------
  function groupThousands(intPart) {
    return intPart.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  /** Format a decimal (string or number) with thousands separators, keeping every digit. */
  function fmtNumber(value) {
    if (value === null || value === undefined || value === "") return "–";
    var s = String(value);
    if (!/^-?\d+(\.\d+)?$/.test(s)) return s;
    var neg = s.charAt(0) === "-";
    if (neg) s = s.slice(1);
    var parts = s.split(".");
    return (neg ? "-" : "") + groupThousands(parts[0]) + (parts.length > 1 ? "." + parts[1] : "");
  }

  function fmtSigned(value) {
    if (value === null || value === undefined || value === "") return "–";
    var s = String(value);
    var out = fmtNumber(s);
    return /^-/.test(s) || Number(s) === 0 ? out : "+" + out;
  }

  /** A decimal string rounded half away from zero to ``places`` decimals, on the digits (no
   * float): "1.235" -> "1.24", "-0.004" -> "0.00", "3" -> "3.00". */
  function roundDecimal(value, places) {
    var s = String(value);
    if (!/^-?\d+(\.\d+)?$/.test(s)) return s;
    var neg = s.charAt(0) === "-";
    if (neg) s = s.slice(1);
    var parts = s.split(".");
    var frac = (parts[1] || "") + new Array(places + 2).join("0");
    var digits = (parts[0] + frac.slice(0, places)).split("").map(Number);
    if (Number(frac.charAt(places)) >= 5) {
      for (var i = digits.length - 1; i >= 0; i--) {
        if (digits[i] < 9) {
          digits[i] += 1;
          break;
        }
        digits[i] = 0;
        if (i === 0) digits.unshift(1);
      }
    }
    var text = digits.join("");
    var whole = text.slice(0, text.length - places).replace(/^0+(?=\d)/, "") || "0";
    var out = places ? whole + "." + text.slice(text.length - places) : whole;
    return neg && /[1-9]/.test(out) ? "-" + out : out;
  }

  /** A change rate in percent: always two decimals, signed, thousands grouped ("+1.20%"). */
  function fmtRate(value) {
    if (value === null || value === undefined || value === "") return "–";
    return fmtSigned(roundDecimal(value, 2)) + "%";
  }

  function sign(value) {
    var n = Number(value);
    if (!isFinite(n) || n === 0) return 0;
    return n > 0 ? 1 : -1;
  }

  // Times are 24-hour HH:MM:SS in the server's time zone (TIME_ZONE), as the pages print them.
  var timeZone = document.body.dataset.timeZone || undefined;
  var timeFormat = null;
  try {
    timeFormat = new Intl.DateTimeFormat("en-GB", {
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZone: timeZone,
    });
  } catch (e) {
    timeFormat = null; // an unknown zone name: the browser's own zone, still 24-hour
  }

  function pad2(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function fmtTime(iso) {
    if (!iso) return "–";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    if (timeFormat && timeFormat.formatToParts) {
      var parts = {};
      timeFormat.formatToParts(d).forEach(function (p) {
        parts[p.type] = p.value;
      });
      return parts.hour + ":" + parts.minute + ":" + parts.second;
    }
    return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
  }

  // ---- the connection ------------------------------------------------------------------
  var pingSeconds = Number(document.body.dataset.pingInterval) || 30;

  function Live(url) {
    this.url = url;
    this.handlers = {}; // topic -> [fn]
    this.typeHandlers = {}; // message type -> [fn]
    this.ws = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.watchdog = null;
    this.state = "connecting";
    this.stateListeners = [];
    this.closedByUs = false;
    this.connects = 0; // how many times the server said "connected" (1 = never reconnected)
    var self = this;
    window.addEventListener("online", function () {
      self.reconnectNow();
    });
    window.addEventListener("offline", function () {
      self.setState("offline");
    });
    this.connect();
  }

  Live.prototype.setState = function (state, detail) {
    this.state = state;
    var el = document.getElementById("conn");
    if (el) {
      el.dataset.state = state;
      el.className = "conn conn-" + state;
      var label = t(state, state);
      if (state === "reconnecting" && detail && detail.delay) {
        label += " · " + t("retryIn", "retry in {seconds}s").replace("{seconds}", Math.ceil(detail.delay / 1000));
      }
      el.querySelector(".conn-label").textContent = label;
    }
    for (var i = 0; i < this.stateListeners.length; i++) this.stateListeners[i](state, detail);
  };

  Live.prototype.onState = function (fn) {
    this.stateListeners.push(fn);
    fn(this.state);
  };

  Live.prototype.connect = function () {
    var self = this;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    var ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = function () {
      self.kick();
    };
    ws.onmessage = function (event) {
      if (self.ws !== ws) return;
      self.kick();
      var msg;
      try {
        msg = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      // Whatever said otherwise (an "offline" event, a watchdog that fired late), a message on
      // the current socket proves the connection: the indicator follows the socket.
      if (self.state !== "connected" && self.connects > 0 && msg.type !== "connected") self.setState("connected");
      self.dispatch(msg);
    };
    ws.onclose = function () {
      if (self.ws !== ws) return;
      self.ws = null;
      clearTimeout(self.watchdog);
      if (!self.closedByUs) self.scheduleReconnect();
    };
    ws.onerror = function () {
      /* onclose follows and schedules the reconnect */
    };
  };

  /** Restart the liveness watchdog: the server pings every pingSeconds, so silence means dead. */
  Live.prototype.kick = function () {
    var self = this;
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(function () {
      if (self.ws) {
        var dead = self.ws;
        self.ws = null;
        try {
          dead.close();
        } catch (e) {
          /* already closing */
        }
        self.scheduleReconnect();
      }
    }, Math.max(pingSeconds * 2500, 10000));
  };

  /** Exponential backoff with full jitter: 0.5–1 × min(30 s, 0.5 s × 2^attempt). */
  Live.prototype.nextDelay = function () {
    var cap = Math.min(30000, 500 * Math.pow(2, this.attempt));
    this.attempt += 1;
    return Math.round(cap * (0.5 + Math.random() * 0.5));
  };

  Live.prototype.scheduleReconnect = function () {
    if (this.retryTimer) return;
    var self = this;
    var delay = this.nextDelay();
    this.setState(navigator.onLine === false ? "offline" : "reconnecting", { delay: delay, attempt: this.attempt });
    this.retryTimer = setTimeout(function () {
      self.retryTimer = null;
      self.connect();
    }, delay);
  };

  Live.prototype.reconnectNow = function () {
    if (this.ws && this.ws.readyState === 1 && this.connects > 0) {
      this.setState("connected"); // back online and the socket never dropped
      return;
    }
    if (this.ws && this.ws.readyState === 0) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connect();
  };

  Live.prototype.send = function (obj) {
    if (this.ws && this.ws.readyState === 1) {
      this.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  };

  Live.prototype.dispatch = function (msg) {
    switch (msg.type) {
      case "connected":
        this.attempt = 0;
        this.connects += 1;
        this.setState("connected");
        for (var topic in this.handlers) {
          if (this.handlers[topic].length) this.send({ type: "subscribe", topic: topic });
        }
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "price_update":
        this.emit("price:" + msg.ticker, msg);
        break;
      case "order_update":
        this.emit("orders", msg);
        break;
      case "webhook_update":
        this.emit("webhooks", msg);
        break;
      case "portfolio_update":
        this.emit("portfolio", msg);
        break;
      default:
        break;
    }
    var list = this.typeHandlers[msg.type] || [];
    for (var i = 0; i < list.length; i++) list[i](msg);
  };

  Live.prototype.emit = function (topic, msg) {
    var list = this.handlers[topic] || [];
    for (var i = 0; i < list.length; i++) {
      try {
        list[i](msg);
      } catch (e) {
        if (window.console) console.error(e);
      }
    }
  };

  Live.prototype.on = function (type, fn) {
    (this.typeHandlers[type] = this.typeHandlers[type] || []).push(fn);
  };

  Live.prototype.subscribe = function (topic, fn) {
    var first = !(this.handlers[topic] && this.handlers[topic].length);
    (this.handlers[topic] = this.handlers[topic] || []).push(fn);
    if (first && this.state === "connected") this.send({ type: "subscribe", topic: topic });
  };

  Live.prototype.unsubscribe = function (topic) {
    delete this.handlers[topic];
    if (this.state === "connected") this.send({ type: "unsubscribe", topic: topic });
  };

  /** The badge a price's source gets: realtime, simulated (made-up demo ticks, never shown as
   * realtime) or daily close. */
  function sourceOf(data) {
    var source = data && data.source;
    if (source === "daily_close" || source === "simulated") return source;
    return data && data.feed === "simulated" ? "simulated" : "realtime";
  }

  /** Replace el's content with the source badge (realtime / simulated / daily close) and a stale badge. */
  function sourceBadges(el, source, stale) {
    el.textContent = "";
    var badge = document.createElement("span");
    badge.className = "badge badge-" + source;
    badge.textContent =
      source === "daily_close"
        ? t("dailyClose", "daily close")
        : source === "simulated"
          ? t("simulated", "simulated")
          : t("realtime", "realtime");
    el.appendChild(badge);
    if (stale) {
      var st = document.createElement("span");
      st.className = "badge badge-stale";
      st.textContent = t("stale", "stale");
      el.appendChild(document.createTextNode(" "));
      el.appendChild(st);
    }
  }

  function instrumentUrl(instrument) {
    return "/instruments/" + encodeURIComponent(instrument).replace(/%2F/g, "/").replace(/%3A/g, ":") + "/";
  }

  var scheme = location.protocol === "https:" ? "wss://" : "ws://";
  window.QT = window.QT || {};
  window.QT.t = t;
  window.QT.sourceBadges = sourceBadges;
  window.QT.sourceOf = sourceOf;
  window.QT.instrumentUrl = instrumentUrl;
  window.QT.fmt = {
    number: fmtNumber, signed: fmtSigned, rate: fmtRate, round: roundDecimal, sign: sign, time: fmtTime,
  };
  window.QT.live = new Live(scheme + location.host + "/ws");

  // Copy buttons: <button data-copy="#element-id">.
  document.addEventListener("click", function (event) {
    var btn = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!btn) return;
    var src = document.querySelector(btn.dataset.copy);
    if (!src) return;
    var text = src.value !== undefined ? src.value : src.textContent;
    var done = function () {
      var old = btn.textContent;
      btn.textContent = t("copied", "Copied");
      setTimeout(function () {
        btn.textContent = old;
      }, 1200);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {
        fallbackCopy(src, done);
      });
    } else {
      fallbackCopy(src, done);
    }
  });

  function fallbackCopy(src, done) {
    var range = document.createRange();
    range.selectNodeContents(src);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    try {
      document.execCommand("copy");
      done();
    } catch (e) {
      /* selection stays for a manual copy */
    }
  }
})();
