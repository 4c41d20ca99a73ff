// Canvas layers for the many things on the map: 200,000 cells and 20,000 stations are drawn
// straight onto one canvas each (Leaflet's vector layers would make an object per feature).
"use strict";
window.WS = window.WS || {};

WS.layers = (() => {
  // Okabe–Ito colours; each station state also has its own shape.
  const STATE_STYLE = {
    available: { color: "#009E73", shape: "circle" },
    degraded: { color: "#E69F00", shape: "triangle" },
    closed: { color: "#D55E00", shape: "square" },
    silent: { color: "#000000", shape: "diamond" },
  };
  const DRAW_ORDER = ["available", "silent", "degraded", "closed"]; // trouble on top
  const ACCESS_RAMP = ["#d6eaf8", "#a9d1ef", "#6fb0de", "#3587c4", "#0b5394"];
  const UNDERSERVED = "#CC79A7";
  const UNCOVERED = "#bdbdbd";
  const CELL_ALPHA = 0.62;
  const HEX_EDGE_M = 174; // H3 resolution 9
  const MIN_HEX_PX = 4; // below this a cell is drawn as a square of the same area
  const EARTH_CIRCUMFERENCE_M = 40075016.686;

  // Web Mercator in "world units" (0..1), as Leaflet's EPSG:3857 projects at zoom 0 / 256.
  function mercator(lat, lon) {
    const clamped = Math.max(-85.0511, Math.min(85.0511, lat));
    const sin = Math.sin((clamped * Math.PI) / 180);
    return [0.5 + lon / 360, 0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI)];
  }

  function project(lats, lons) {
    const xs = new Float64Array(lats.length), ys = new Float64Array(lats.length);
    for (let i = 0; i < lats.length; i++) {
      const xy = mercator(lats[i], lons[i]);
      xs[i] = xy[0];
      ys[i] = xy[1];
    }
    return { xs, ys };
  }

  // One canvas over the map, redrawn after every move; `draw(ctx, view)` does the work.
  const CanvasLayer = L.Layer.extend({
    initialize(draw, paneName) {
      this._drawFn = draw;
      this._paneName = paneName;
    },
    onAdd(map) {
      this._canvas = L.DomUtil.create("canvas", "ws-canvas-layer");
      map.getPane(this._paneName).appendChild(this._canvas);
      map.on("moveend zoomend resize viewreset", this._reset, this);
      this._reset();
    },
    onRemove(map) {
      if (this._frame) cancelAnimationFrame(this._frame);
      this._frame = null;
      this._canvas.remove();
      map.off("moveend zoomend resize viewreset", this._reset, this);
    },
    // Draws now; a redraw that a move had scheduled is then no longer needed.
    draw() {
      if (this._frame) cancelAnimationFrame(this._frame);
      this._frame = null;
      this._draw();
      return this;
    },
    // A move redraws in the next frame, once however many moves (and draws) came before it:
    // fitting the map to a district moves it while the page is still filling the model.
    _reset() {
      const size = this._map.getSize();
      const ratio = window.devicePixelRatio || 1;
      this._canvas.width = size.x * ratio;
      this._canvas.height = size.y * ratio;
      this._canvas.style.width = `${size.x}px`;
      this._canvas.style.height = `${size.y}px`;
      L.DomUtil.setPosition(this._canvas, this._map.containerPointToLayerPoint([0, 0]));
      if (!this._frame) {
        this._frame = requestAnimationFrame(() => {
          this._frame = null;
          this._draw();
        });
      }
    },
    _draw() {
      const map = this._map;
      if (!map) return;
      const ctx = this._canvas.getContext("2d");
      const ratio = window.devicePixelRatio || 1;
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, this._canvas.width, this._canvas.height);
      const zoom = map.getZoom();
      const origin = map.getPixelBounds().min;
      const size = map.getSize();
      const scale = 256 * 2 ** zoom;
      const lat = map.getCenter().lat;
      const metresPerPx = (EARTH_CIRCUMFERENCE_M * Math.cos((lat * Math.PI) / 180)) / scale;
      this._drawFn(ctx, { zoom, scale, ox: origin.x, oy: origin.y, w: size.x, h: size.y, metresPerPx });
    },
  });

  // Cells: squares at city scale, true H3 hexagons once they are big enough to see.
  function cellDrawer(model) {
    const outlines = new Map(); // cell index -> Float64Array of mercator x,y pairs
    function outline(i) {
      let ring = outlines.get(i);
      if (!ring) {
        const boundary = h3.cellToBoundary(model.cells.id[i]);
        ring = new Float64Array(boundary.length * 2);
        boundary.forEach(([la, lo], k) => {
          [ring[2 * k], ring[2 * k + 1]] = mercator(la, lo);
        });
        outlines.set(i, ring);
      }
      return ring;
    }
    return (ctx, v) => {
      const cells = model.cells;
      if (!cells) return;
      const hexPx = HEX_EDGE_M / v.metresPerPx;
      const half = Math.max(0.75, hexPx * 0.8);
      const margin = hexPx * 2;
      const paths = new Map();
      for (let i = 0; i < cells.n; i++) {
        const x = cells.xs[i] * v.scale - v.ox, y = cells.ys[i] * v.scale - v.oy;
        if (x < -margin || y < -margin || x > v.w + margin || y > v.h + margin) continue;
        const fill = model.cellStyle(i);
        let path = paths.get(fill);
        if (!path) paths.set(fill, (path = new Path2D()));
        if (hexPx < MIN_HEX_PX) {
          path.rect(x - half, y - half, 2 * half, 2 * half);
        } else {
          const ring = outline(i);
          path.moveTo(ring[0] * v.scale - v.ox, ring[1] * v.scale - v.oy);
          for (let k = 2; k < ring.length; k += 2) {
            path.lineTo(ring[k] * v.scale - v.ox, ring[k + 1] * v.scale - v.oy);
          }
          path.closePath();
        }
      }
      ctx.globalAlpha = CELL_ALPHA;
      for (const [fill, path] of paths) {
        ctx.fillStyle = fill;
        ctx.fill(path);
      }
      ctx.globalAlpha = 1;
    };
  }

  function markerSize(zoom) {
    return zoom >= 15 ? 8 : zoom >= 13 ? 6 : zoom >= 11 ? 4 : 3;
  }

  function addShape(path, shape, x, y, r) {
    if (shape === "circle") {
      path.moveTo(x + r, y);
      path.arc(x, y, r, 0, 2 * Math.PI);
    } else if (shape === "square") {
      path.rect(x - r * 0.9, y - r * 0.9, r * 1.8, r * 1.8);
    } else if (shape === "triangle") {
      path.moveTo(x, y - r * 1.2);
      path.lineTo(x + r * 1.1, y + r * 0.8);
      path.lineTo(x - r * 1.1, y + r * 0.8);
      path.closePath();
    } else {
      path.moveTo(x, y - r * 1.2);
      path.lineTo(x + r * 1.1, y);
      path.lineTo(x, y + r * 1.2);
      path.lineTo(x - r * 1.1, y);
      path.closePath();
    }
  }

  function stationDrawer(model) {
    return (ctx, v) => {
      const s = model.stations;
      if (!s) return;
      const r = markerSize(v.zoom);
      const paths = Object.fromEntries(DRAW_ORDER.map((state) => [state, new Path2D()]));
      for (let i = 0; i < s.n; i++) {
        const x = s.xs[i] * v.scale - v.ox, y = s.ys[i] * v.scale - v.oy;
        if (x < -r || y < -r || x > v.w + r || y > v.h + r) continue;
        const state = model.states[s.state[i]];
        addShape(paths[state], STATE_STYLE[state].shape, x, y, r);
      }
      ctx.lineWidth = r >= 4 ? 1.5 : 0.75;
      ctx.strokeStyle = "#ffffff";
      for (const state of DRAW_ORDER) {
        ctx.fillStyle = STATE_STYLE[state].color;
        ctx.fill(paths[state]);
        ctx.stroke(paths[state]);
      }
    };
  }

  // A small canvas swatch of a station shape, for the legend and the panel.
  function swatch(state, size = 14) {
    const canvas = document.createElement("canvas");
    const ratio = window.devicePixelRatio || 1;
    canvas.width = canvas.height = size * ratio;
    canvas.style.width = canvas.style.height = `${size}px`;
    canvas.className = "swatch";
    canvas.setAttribute("aria-hidden", "true");
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    const path = new Path2D();
    addShape(path, STATE_STYLE[state].shape, size / 2, size / 2, size * 0.33);
    ctx.fillStyle = STATE_STYLE[state].color;
    ctx.strokeStyle = "#ffffff";
    ctx.fill(path);
    ctx.stroke(path);
    return canvas;
  }

  return {
    STATE_STYLE, ACCESS_RAMP, UNDERSERVED, UNCOVERED, CELL_ALPHA,
    mercator, project, CanvasLayer, cellDrawer, stationDrawer, markerSize, swatch,
  };
})();
