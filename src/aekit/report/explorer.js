// aekit's latent explorer: draws the map of codes, finds what the pointer is over, and decodes
// codes in the page: the model's decoder as a chain of dense layers (weights embedded as base64
// float32), or, for a decoder that is not such a chain, a grid of decodings made in Python.
// Everything it reads is in the JSON block #aekit-data; it fetches nothing.
(() => {
  "use strict";
  const D = JSON.parse(document.getElementById("aekit-data").textContent);

  // -- embedded arrays ------------------------------------------------------------------------
  function bytes(b64) {
    const text = atob(b64);
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }
  const f32 = (b64) => new Float32Array(bytes(b64).buffer);  // little-endian, as numpy's "<f4"

  const K = D.latent_dim;
  const N = D.n_points;
  const FEATURES = D.n_features;
  const positions = f32(D.positions);  // (N, 2), map coordinates
  const codes = f32(D.codes);  // (N, K)
  const image = D.display.kind === "image";
  const samples = image ? bytes(D.samples) : f32(D.samples);  // (N, FEATURES): display bytes or data units
  const scaling = D.scaling ? {mean: f32(D.scaling.mean), scale: f32(D.scaling.scale)} : null;

  // -- activations (the same functions as torch's modules) ------------------------------------
  // erf: Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7).
  function erf(x) {
    const s = x < 0 ? -1 : 1;
    const a = Math.abs(x);
    const t = 1 / (1 + 0.3275911 * a);
    const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return s * (1 - poly * Math.exp(-a * a));
  }
  const ACTIVATIONS = {
    relu: (x) => (x > 0 ? x : 0),
    leaky_relu: (x, p) => (x > 0 ? x : p.negative_slope * x),
    elu: (x, p) => (x > 0 ? x : p.alpha * Math.expm1(x)),
    gelu: (x, p) => (p.approximate === "tanh"
      ? 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)))
      : 0.5 * x * (1 + erf(x / Math.SQRT2))),
    silu: (x) => x / (1 + Math.exp(-x)),
    tanh: (x) => Math.tanh(x),
    sigmoid: (x) => 1 / (1 + Math.exp(-x)),
    softplus: (x, p) => (x * p.beta > p.threshold ? x : Math.log1p(Math.exp(p.beta * x)) / p.beta),
  };
  function activation(name, x, params) {
    return ACTIVATIONS[name](x, params || {});
  }

  // -- the decoder ------------------------------------------------------------------------------
  const chain = D.decoder && {
    condDim: D.decoder.cond_dim,
    output: D.decoder.output,
    steps: D.decoder.steps.map((s) => (s.op === "linear"
      ? {op: "linear", nIn: s.in, nOut: s.out, w: f32(s.weight), b: f32(s.bias)}
      : s)),
  };
  const grid = D.grid && {
    size: D.grid.size,
    values: image ? bytes(D.grid.values) : f32(D.grid.values),  // (classes, size, size, FEATURES)
    recon: image ? bytes(D.grid.recon) : f32(D.grid.recon),  // (N, FEATURES)
  };

  // Decode z (K values) with class index cls (conditional models): the model's output in data
  // units, FEATURES values in the layout the model was trained on.
  function decode(z, cls) {
    let h = new Float64Array(K + chain.condDim);
    for (let i = 0; i < K; i++) h[i] = z[i];
    if (chain.condDim) h[K + cls] = 1;
    for (const s of chain.steps) {
      if (s.op === "linear") {
        const out = new Float64Array(s.nOut);
        for (let o = 0; o < s.nOut; o++) {
          let acc = s.b[o];
          const row = o * s.nIn;
          for (let i = 0; i < s.nIn; i++) acc += s.w[row + i] * h[i];
          out[o] = acc;
        }
        h = out;
      } else if (s.op === "act") {
        for (let i = 0; i < h.length; i++) h[i] = activation(s.name, h[i], s);
      } else {
        h = h.slice(s.start, s.stop);
      }
    }
    if (chain.output === "sigmoid") for (let i = 0; i < h.length; i++) h[i] = 1 / (1 + Math.exp(-h[i]));
    if (scaling) for (let i = 0; i < h.length; i++) h[i] = h[i] * scaling.scale[i] + scaling.mean[i];
    return h;
  }

  // -- map coordinates <-> codes ----------------------------------------------------------------
  const P = D.projection;
  function codeAt(px, py) {  // the code a map point stands for: mean + px * c1 + py * c2
    const z = new Float64Array(K);
    for (let i = 0; i < K; i++) z[i] = P.mean[i] + px * P.components[0][i] + py * P.components[1][i];
    return z;
  }
  function projectionOf(z) {  // a code's map point (its projection onto the plane)
    let px = 0, py = 0;
    for (let i = 0; i < K; i++) {
      px += (z[i] - P.mean[i]) * P.components[0][i];
      py += (z[i] - P.mean[i]) * P.components[1][i];
    }
    return [px, py];
  }

  // -- drawing ----------------------------------------------------------------------------------
  const mapCanvas = document.getElementById("map");
  const mapCtx = mapCanvas.getContext("2d");
  const [x0, x1, y0, y1] = D.extent;
  const CSS_SIZE = mapCanvas.clientWidth || 520;
  const ratio = window.devicePixelRatio || 1;
  mapCanvas.width = Math.round(CSS_SIZE * ratio);
  mapCanvas.height = Math.round(CSS_SIZE * ratio);
  const toScreen = (px, py) => [(px - x0) / (x1 - x0) * CSS_SIZE, (1 - (py - y0) / (y1 - y0)) * CSS_SIZE];
  const toMap = (sx, sy) => [x0 + sx / CSS_SIZE * (x1 - x0), y0 + (1 - sy / CSS_SIZE) * (y1 - y0)];
  const colour = (i) => (D.labels ? D.colours[D.labels[i]] : "#2f6fde");

  function drawMap(highlight, cross) {
    mapCtx.setTransform(ratio, 0, 0, ratio, 0, 0);
    mapCtx.clearRect(0, 0, CSS_SIZE, CSS_SIZE);
    mapCtx.globalAlpha = 0.75;
    for (let i = 0; i < N; i++) {
      const [sx, sy] = toScreen(positions[2 * i], positions[2 * i + 1]);
      mapCtx.fillStyle = colour(i);
      mapCtx.beginPath();
      mapCtx.arc(sx, sy, 2.6, 0, 2 * Math.PI);
      mapCtx.fill();
    }
    mapCtx.globalAlpha = 1;
    if (highlight !== null) {
      const [sx, sy] = toScreen(positions[2 * highlight], positions[2 * highlight + 1]);
      mapCtx.strokeStyle = "#1d2330";
      mapCtx.lineWidth = 2;
      mapCtx.beginPath();
      mapCtx.arc(sx, sy, 6, 0, 2 * Math.PI);
      mapCtx.stroke();
    }
    if (cross) {
      mapCtx.strokeStyle = "#1d2330";
      mapCtx.lineWidth = 1;
      mapCtx.beginPath();
      mapCtx.moveTo(cross[0] - 7, cross[1]); mapCtx.lineTo(cross[0] + 7, cross[1]);
      mapCtx.moveTo(cross[0], cross[1] - 7); mapCtx.lineTo(cross[0], cross[1] + 7);
      mapCtx.stroke();
    }
  }

  // data units -> display bytes (images): clip((v - lo) / (hi - lo), 0, 1) * 255, rounded
  function toBytes(values) {
    const {lo, hi} = D.display;
    const out = new Uint8ClampedArray(values.length);
    for (let i = 0; i < values.length; i++) {
      const v = Math.min(1, Math.max(0, (values[i] - lo) / (hi - lo)));
      out[i] = Math.round(v * 255);
    }
    return out;
  }

  function paintImage(canvas, pixels) {  // pixels: display bytes in the (C, H, W) layout, or null
    const [c, h, w] = D.display.shape;
    const ctx = canvas.getContext("2d", {willReadFrequently: true});  // small, and read back by tests
    if (pixels === null) { ctx.clearRect(0, 0, w, h); return; }
    const img = ctx.createImageData(w, h);
    for (let p = 0; p < h * w; p++) {
      const rgb = c === 3 ? [pixels[p], pixels[h * w + p], pixels[2 * h * w + p]] : [pixels[p], pixels[p], pixels[p]];
      img.data[4 * p] = rgb[0]; img.data[4 * p + 1] = rgb[1]; img.data[4 * p + 2] = rgb[2]; img.data[4 * p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  function paintBars(decoded, original) {  // decoded / original: data units (original may be null)
    const canvas = document.getElementById("decoded");
    const ctx = canvas.getContext("2d");
    const W = canvas.width, H = canvas.height, mid = H / 2, span = H / 2 - 6;
    const std = (v, j) => Math.max(-3, Math.min(3, (v - D.display.mean[j]) / D.display.std[j]));
    ctx.clearRect(0, 0, W, H);
    ctx.strokeStyle = "#dde2ea";
    ctx.beginPath(); ctx.moveTo(0, mid); ctx.lineTo(W, mid); ctx.stroke();
    const bw = W / FEATURES;
    for (let j = 0; j < FEATURES; j++) {
      const v = std(decoded[j], j) / 3 * span;
      ctx.fillStyle = "#2f6fde";
      ctx.fillRect(j * bw + bw * 0.15, Math.min(mid, mid - v), bw * 0.7, Math.abs(v));
      if (original) {
        const o = mid - std(original[j], j) / 3 * span;
        ctx.fillStyle = "#1d2330";
        ctx.fillRect(j * bw, o - 1, bw, 2);
      }
    }
    const rows = document.querySelectorAll("#features tbody tr");
    rows.forEach((row, j) => {
      row.children[1].textContent = formatNumber(decoded[j]);
      row.children[2].textContent = original ? formatNumber(original[j]) : "";
    });
  }

  const formatNumber = (v) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toPrecision(4));

  const sampleValues = (i) => samples.subarray(i * FEATURES, (i + 1) * FEATURES);

  // -- state and interaction --------------------------------------------------------------------
  const state = {mode: "none", index: null, nearest: 0, z: null, shown_z: null, cls: 0, values: null, pinned: false};
  const statusLine = document.getElementById("status");
  const classSelect = document.getElementById("class");
  const decodedCanvas = document.getElementById("decoded");
  const sampleCanvas = document.getElementById("sample");

  function nearestGridNode(z) {  // grid mode: the node nearest to z's map position
    const [px, py] = projectionOf(z);
    const g = grid.size;
    const gx = Math.round((px - x0) / (x1 - x0) * (g - 1));
    const gy = Math.round((py - y0) / (y1 - y0) * (g - 1));
    return [Math.min(g - 1, Math.max(0, gx)), Math.min(g - 1, Math.max(0, gy))];
  }

  function show() {
    let values;
    state.cls = chosenClass();
    let shownZ = state.z;
    if (chain) {
      values = decode(state.z, state.cls);
    } else if (state.mode === "sample") {  // its reconstruction, made in Python with its own class
      values = grid.recon.subarray(state.index * FEATURES, (state.index + 1) * FEATURES);
      if (classSelect) state.cls = D.own_classes[state.index];
    } else {
      const [gx, gy] = nearestGridNode(state.z);
      const g = grid.size;
      const node = (state.cls * g + gy) * g + gx;
      values = grid.values.subarray(node * FEATURES, (node + 1) * FEATURES);
      shownZ = codeAt(x0 + gx / (g - 1) * (x1 - x0), y0 + gy / (g - 1) * (y1 - y0));
    }
    state.values = Array.from(values);
    state.shown_z = Array.from(shownZ);
    decodedCanvas.dataset.z = JSON.stringify(state.shown_z);
    if (image) {
      paintImage(decodedCanvas, chain ? toBytes(values) : values);
      paintImage(sampleCanvas, state.mode === "sample" ? sampleValues(state.index) : null);
    } else {
      paintBars(values, state.mode === "sample" ? sampleValues(state.index) : null);
    }
    updateSliders();
    const where = (state.mode === "sample"
      ? `sample #${D.indices[state.index]}` + (D.labels ? ` (label ${D.label_names[D.labels[state.index]]})` : "")
        + (state.under > 1 ? ` and ${state.under - 1} more under the pointer` : "")
      : state.mode === "traversal" ? "traversal of the code below" : "empty space")
      + (classSelect ? `, decoded as class ${D.classes[state.cls]}` : "");
    const zText = state.shown_z.slice(0, 8).map((v) => v.toFixed(2)).join(", ") + (K > 8 ? ", ..." : "");
    statusLine.textContent = `${where}${state.pinned ? " (pinned: click the map to release)" : ""}; code [${zText}]`;
    document.body.dataset.mode = state.mode;
  }

  function hover(sx, sy) {
    let best = 0, bestD = Infinity, under = 0;
    for (let i = 0; i < N; i++) {
      const [px, py] = toScreen(positions[2 * i], positions[2 * i + 1]);
      const d = (px - sx) ** 2 + (py - sy) ** 2;
      if (d <= 36) under++;
      if (d < bestD) { bestD = d; best = i; }
    }
    state.nearest = best;
    state.under = under;
    if (bestD <= 36) {  // within 6 px of a sample
      state.mode = "sample"; state.index = best; state.z = Float64Array.from(codes.subarray(best * K, (best + 1) * K));
      drawMap(best, null);
    } else {
      const [px, py] = toMap(sx, sy);
      state.mode = "space"; state.index = null; state.z = codeAt(px, py);
      drawMap(null, [sx, sy]);
    }
    show();
  }

  // the class to decode with (conditional models): the one chosen, or by default the hovered
  // sample's own class (in empty space: the nearest sample's)
  function chosenClass() {
    if (!classSelect) return 0;
    const v = Number(classSelect.value);
    return v >= 0 ? v : D.own_classes[state.nearest];
  }

  mapCanvas.addEventListener("mousemove", (e) => {
    if (state.pinned) return;
    const r = mapCanvas.getBoundingClientRect();
    hover((e.clientX - r.left) * CSS_SIZE / r.width, (e.clientY - r.top) * CSS_SIZE / r.height);
  });
  mapCanvas.addEventListener("click", () => { if (state.z) { state.pinned = !state.pinned; show(); } });

  // sliders: one per code dimension (variational models), the traversal of the shown code
  const sliders = [];
  if (D.sliders && chain) {
    const box = document.getElementById("sliders");
    for (let d = 0; d < K; d++) {
      const row = document.createElement("label");
      row.className = "slider";
      const name = document.createElement("span");
      name.textContent = `z[${d}]`;
      const input = document.createElement("input");
      input.type = "range";
      input.min = D.sliders.lo[d]; input.max = D.sliders.hi[d];
      input.step = (D.sliders.hi[d] - D.sliders.lo[d]) / 400;
      input.value = 0;
      input.dataset.dim = d;
      const value = document.createElement("output");
      input.addEventListener("input", () => {
        if (!state.z) state.z = codeAt(0, 0);
        state.z = Float64Array.from(state.z);
        state.z[d] = Number(input.value);
        state.mode = "traversal";
        drawMap(null, toScreen(...projectionOf(state.z)));
        show();
      });
      row.append(name, input, value);
      box.appendChild(row);
      sliders.push([input, value]);
    }
  }
  function updateSliders() {
    sliders.forEach(([input, value], d) => {
      if (document.activeElement !== input) input.value = state.z[d];
      value.textContent = Number(state.z[d]).toFixed(2);
    });
  }

  if (classSelect) classSelect.addEventListener("change", () => { if (state.z) show(); });

  // legend
  const legend = document.getElementById("legend");
  if (legend && D.labels) {
    D.label_names.forEach((name, c) => {
      const item = document.createElement("span");
      const dot = document.createElement("i");
      dot.style.background = D.colours[c];
      item.append(dot, document.createTextNode(name));
      legend.appendChild(item);
    });
  }

  drawMap(null, null);
  state.z = codeAt(0, 0);
  state.mode = "space";
  show();

  // for tests and for users' own scripts
  window.aekitExplorer = {
    state,
    decode: (z, cls) => (chain ? Array.from(decode(z, cls || 0)) : null),
    activation,
    screenPosition: (i) => toScreen(positions[2 * i], positions[2 * i + 1]),
    mapSize: CSS_SIZE,
  };
})();
