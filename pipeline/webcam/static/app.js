// Live matting page: draws the JPEG frames the server sends on /ws and sends back settings and,
// in browser-camera mode, this browser's own camera frames (at most MAX_IN_FLIGHT unanswered).
"use strict";

const MAX_IN_FLIGHT = 2;        // camera frames sent but not answered yet
const IN_FLIGHT_TIMEOUT_MS = 1000; // the server drops frames it is too busy for: stop waiting on them
const UPLOAD_QUALITY = 0.8;

const canvas = document.getElementById("view");
const context = canvas.getContext("2d");
const framesLabel = document.getElementById("frames");
const statsBox = document.getElementById("stats");
const message = document.getElementById("message");
const backgroundSelect = document.getElementById("background");
const smoothingBox = document.getElementById("smoothing");
const video = document.getElementById("camera");

const state = { frames: 0, socket: null, camera: null, sentAt: [] };
window.liveMatting = state;  // read by the browser tests

function send(command) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify(command));
}

function number(value, digits) {
  return value === null || value === undefined ? "-" : value.toFixed(digits);
}

function showStats(s) {
  statsBox.textContent =
    `capture   ${number(s.capture_fps, 1)} fps\n` +
    `inference ${number(s.inference_fps, 1)} fps\n` +
    `latency   p50 ${number(s.latency_ms_p50, 0)} ms  p95 ${number(s.latency_ms_p95, 0)} ms\n` +
    `shown ${s.frames_shown}  dropped ${s.frames_dropped}` +
    (s.roi_crops === null || s.roi_crops === undefined ? "" :
      `\nROI ${s.roi_crops} crop(s), ${number(100 * s.roi_coverage, 0)}% of the frame`);
  smoothingBox.checked = s.smoothing;
}

async function drawFrame(blob) {
  const bitmap = await createImageBitmap(blob);
  if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
  }
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  state.frames += 1;
  framesLabel.textContent = String(state.frames);
}

function connect() {
  const socket = new WebSocket(`ws://${location.host}/ws`);
  socket.binaryType = "blob";
  socket.onopen = () => {
    statsBox.textContent = "waiting for frames...";
    send({ background: backgroundSelect.value });
    if (state.camera) send({ camera: true });
  };
  socket.onmessage = (event) => {
    if (typeof event.data === "string") {
      const data = JSON.parse(event.data);
      if (data.type === "stats") showStats(data);
      if (data.type === "error") message.textContent = data.message;
      return;
    }
    state.sentAt.shift();
    drawFrame(event.data);
  };
  socket.onclose = () => {
    statsBox.textContent = "disconnected: the server stopped or is unreachable";
  };
  state.socket = socket;
}

async function startCamera() {
  if (state.camera) return;
  if (!navigator.mediaDevices) {
    message.textContent = "browsers share their camera only with https or localhost pages: " +
      "reach this server through an SSH tunnel to 127.0.0.1";
    return;
  }
  try {
    state.camera = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (error) {
    message.textContent = `camera unavailable: ${error.message}`;
    return;
  }
  video.srcObject = state.camera;
  await video.play();
  send({ camera: true });
  const grab = document.createElement("canvas");
  const grabContext = grab.getContext("2d");
  const upload = () => {
    if (!state.camera) return;
    const now = performance.now();
    state.sentAt = state.sentAt.filter((t) => now - t < IN_FLIGHT_TIMEOUT_MS);
    const socket = state.socket;
    if (video.videoWidth && socket && socket.readyState === WebSocket.OPEN && state.sentAt.length < MAX_IN_FLIGHT) {
      grab.width = video.videoWidth;
      grab.height = video.videoHeight;
      grabContext.drawImage(video, 0, 0);
      state.sentAt.push(now);
      grab.toBlob((blob) => { if (blob && socket.readyState === WebSocket.OPEN) socket.send(blob); },
                  "image/jpeg", UPLOAD_QUALITY);
    }
    setTimeout(upload, 10);
  };
  upload();
}

function cycleBackground() {
  backgroundSelect.selectedIndex = (backgroundSelect.selectedIndex + 1) % backgroundSelect.options.length;
  send({ background: backgroundSelect.value });
}

async function init() {
  const config = await (await fetch("config.json")).json();
  for (const name of config.backgrounds) backgroundSelect.add(new Option(name, name));
  backgroundSelect.value = config.background;
  smoothingBox.checked = config.smoothing;
  smoothingBox.disabled = !config.smoothing_available;
  document.getElementById("source").textContent = config.browser_camera ? "this browser's camera" : config.source;
  const cameraButton = document.getElementById("camera-button");
  cameraButton.hidden = !config.browser_camera;
  cameraButton.onclick = startCamera;
  backgroundSelect.onchange = () => send({ background: backgroundSelect.value });
  smoothingBox.onchange = () => send({ smoothing: smoothingBox.checked });
  document.addEventListener("keydown", (event) => {
    if (event.target === backgroundSelect) return;
    if (event.key === "b") cycleBackground();
    if (event.key === "s") { smoothingBox.checked = !smoothingBox.checked; send({ smoothing: smoothingBox.checked }); }
    if (event.key === "m") { backgroundSelect.value = backgroundSelect.value === "matte" ? config.background : "matte"; send({ background: backgroundSelect.value }); }
  });
  connect();
  if (config.browser_camera) startCamera();
}

init();
