// vaebook latent explorer: a VAE decoder run in the reader's browser, no kernel and no network.
// vaebook.widgets.latent_explorer() exports the decoder's weights (float16, base64) into the page;
// this script runs the forward pass  x = sigmoid(W_L relu(... relu(W_1 z + b_1) ...) + b_L)  on a canvas
// each time the reader moves the point z over the 2-D latent plane. A status line (a polite live
// region, so screen readers speak it) says what the decode is: the new z, the decoded image's ink
// (its mean grey level) and how it changed, and the labels of the encoded test digits nearest to z.
(function (id) {
  var root = document.getElementById(id);
  if (!root || root.dataset.ready) return;
  root.dataset.ready = "1";
  var spec = JSON.parse(root.querySelector(".vbx-spec").textContent);

  function halfToFloat(h) {
    var s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
    if (e === 0) return s * Math.pow(2, -14) * (f / 1024);
    if (e === 31) return f ? NaN : s * Infinity;
    return s * Math.pow(2, e - 15) * (1 + f / 1024);
  }
  function decodeArray(b64) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var halves = new Uint16Array(bytes.buffer), out = new Float32Array(halves.length);
    for (var j = 0; j < halves.length; j++) out[j] = halfToFloat(halves[j]);
    return out;
  }
  var layers = spec.layers.map(function (L) {
    return { W: decodeArray(L.w), b: decodeArray(L.b), nin: L.in, nout: L.out, act: L.act };
  });

  // The decoder: one affine map and activation per layer.
  function decode(z) {
    var h = Float32Array.from(z);
    for (var l = 0; l < layers.length; l++) {
      var L = layers[l], y = new Float32Array(L.nout);
      for (var o = 0; o < L.nout; o++) {
        var acc = L.b[o], row = o * L.nin;
        for (var i = 0; i < L.nin; i++) acc += L.W[row + i] * h[i];
        if (L.act === "relu") acc = acc > 0 ? acc : 0;
        else if (L.act === "sigmoid") acc = 1 / (1 + Math.exp(-acc));
        else if (L.act === "tanh") acc = Math.tanh(acc);
        else if (L.act === "elu") acc = acc > 0 ? acc : Math.exp(acc) - 1;
        y[o] = acc;
      }
      h = y;
    }
    return h;
  }

  var plane = root.querySelector(".vbx-plane"), digit = root.querySelector(".vbx-digit");
  var readout = root.querySelector(".vbx-readout");
  var pctx = plane.getContext("2d"), dctx = digit.getContext("2d");
  var side = spec.side, lim = spec.lim, z = [0, 0];
  var small = document.createElement("canvas");
  small.width = side; small.height = side;
  var sctx = small.getContext("2d"), pixels = sctx.createImageData(side, side);
  var colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

  function toPx(v, size) { return (v + lim) / (2 * lim) * size; }
  function drawPlane() {
    var W = plane.width, H = plane.height;
    pctx.fillStyle = "#ffffff"; pctx.fillRect(0, 0, W, H);
    pctx.strokeStyle = "#dddddd"; pctx.lineWidth = 1;
    pctx.beginPath(); pctx.moveTo(W / 2, 0); pctx.lineTo(W / 2, H); pctx.moveTo(0, H / 2); pctx.lineTo(W, H / 2); pctx.stroke();
    var pts = spec.points;
    for (var i = 0; i < pts.length; i++) {
      pctx.fillStyle = colors[pts[i][2] % 10];
      pctx.globalAlpha = 0.55;
      pctx.fillRect(toPx(pts[i][0], W) - 1.5, H - toPx(pts[i][1], H) - 1.5, 3, 3);
    }
    pctx.globalAlpha = 1;
    var x = toPx(z[0], W), y = H - toPx(z[1], H);
    pctx.strokeStyle = "#000000"; pctx.lineWidth = 2;
    pctx.beginPath(); pctx.arc(x, y, 7, 0, 2 * Math.PI); pctx.stroke();
    pctx.strokeStyle = "#ffffff"; pctx.lineWidth = 1;
    pctx.beginPath(); pctx.arc(x, y, 5, 0, 2 * Math.PI); pctx.stroke();
  }
  // The status line. A decode's class is not knowable without a classifier, so it reports what is
  // known: the ink of the decoded image and the labels of the nearest encoded test digits.
  var NEAREST = 5, lastInk = null;
  function inkPercent(img) {
    var s = 0;
    for (var i = 0; i < img.length; i++) s += img[i];
    return Math.round(100 * s / img.length);
  }
  function nearestLabels(z) {
    var pts = spec.points, d = [];
    for (var i = 0; i < pts.length; i++) {
      var a = pts[i][0] - z[0], b = pts[i][1] - z[1];
      d.push([a * a + b * b, pts[i][2]]);
    }
    d.sort(function (p, q) { return p[0] - q[0]; });
    return d.slice(0, NEAREST).map(function (p) { return p[1]; });
  }
  function mostCommon(labels) {  // ties go to the label of the nearer point
    var count = {}, best = labels[0];
    for (var i = 0; i < labels.length; i++) count[labels[i]] = (count[labels[i]] || 0) + 1;
    for (var j = 0; j < labels.length; j++) if (count[labels[j]] > count[best]) best = labels[j];
    return [best, count[best]];
  }
  function describe(img, atEdge) {
    var ink = inkPercent(img), parts = ["z = (" + z[0].toFixed(2) + ", " + z[1].toFixed(2) + ")" + (atEdge ? ", at the edge of the plane" : "")];
    var change = lastInk === null || ink === lastInk ? "" : (ink > lastInk ? ", up " : ", down ") + Math.abs(ink - lastInk) + (Math.abs(ink - lastInk) === 1 ? " point" : " points");
    parts.push("Ink " + ink + "%" + change);
    lastInk = ink;
    var labels = nearestLabels(z);
    if (labels.length) {
      var top = mostCommon(labels);
      var n = labels.length, what;
      if (top[1] === n) what = "all " + top[0] + "s";
      else if (2 * top[1] > n) what = "mostly " + top[0] + "s (" + top[1] + " of " + n + ")";
      else what = "a mix: " + labels.join(", ");
      parts.push("The " + n + " nearest test digits are " + what);
    }
    return parts.join(". ") + ".";
  }
  var atEdge = false;
  function drawDigit() {
    var t0 = performance.now();
    var img = decode(z);
    var ms = performance.now() - t0;
    for (var i = 0; i < side * side; i++) {
      var v = Math.max(0, Math.min(255, Math.round(255 * img[i])));
      pixels.data[4 * i] = v; pixels.data[4 * i + 1] = v; pixels.data[4 * i + 2] = v; pixels.data[4 * i + 3] = 255;
    }
    sctx.putImageData(pixels, 0, 0);
    dctx.imageSmoothingEnabled = false;
    dctx.drawImage(small, 0, 0, digit.width, digit.height);
    root.dataset.decodeMs = ms.toFixed(3);  // for the tests; the reader hears what was decoded, not how fast
    readout.textContent = describe(img, atEdge);
  }
  function update() { drawPlane(); drawDigit(); }
  root.vbxDecode = decode;  // exposed so a test can compare this forward pass with the exported weights
  function setFromEvent(ev) {
    var r = plane.getBoundingClientRect();
    var u = (ev.clientX - r.left) / r.width, v = (ev.clientY - r.top) / r.height;
    z = [Math.max(-lim, Math.min(lim, (2 * u - 1) * lim)), Math.max(-lim, Math.min(lim, (1 - 2 * v) * lim))];
    atEdge = false;
    update();
  }
  var dragging = false;
  plane.addEventListener("pointerdown", function (ev) {
    dragging = true;
    if (plane.setPointerCapture) { try { plane.setPointerCapture(ev.pointerId); } catch (e) { /* synthetic events */ } }
    setFromEvent(ev); ev.preventDefault();
  });
  plane.addEventListener("pointermove", function (ev) { if (dragging) { setFromEvent(ev); ev.preventDefault(); } });
  plane.addEventListener("pointerup", function () { dragging = false; });
  plane.addEventListener("pointercancel", function () { dragging = false; });
  plane.addEventListener("keydown", function (ev) {
    var step = lim / 20, moved = true;
    if (ev.key === "ArrowLeft") z[0] -= step;
    else if (ev.key === "ArrowRight") z[0] += step;
    else if (ev.key === "ArrowUp") z[1] += step;
    else if (ev.key === "ArrowDown") z[1] -= step;
    else moved = false;
    if (moved) {
      var wanted = z.slice();
      z = [Math.max(-lim, Math.min(lim, z[0])), Math.max(-lim, Math.min(lim, z[1]))];
      atEdge = wanted[0] !== z[0] || wanted[1] !== z[1];  // the key asked to go past the edge
      update(); ev.preventDefault();
    }
  });

  // JavaScript runs: swap the static fallback image for the live explorer.
  root.querySelector(".vbx-fallback").style.display = "none";
  root.querySelector(".vbx-live").style.display = "flex";
  update();
})
