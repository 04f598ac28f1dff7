// sipstream WHEP player: plays a WHEP endpoint (draft-ietf-wish-whep) in a
// <video> element with the browser's RTCPeerConnection. No dependencies.
//
//   const session = await whepPlay("/whep/call1", document.querySelector("video"));
//   ...
//   await session.stop();
//
// The offer is sent without waiting for ICE gathering: the server answers
// with its own candidates and learns the viewer's from its connectivity
// checks.
"use strict";

async function whepPlay(url, video, options) {
  options = options || {};
  const pc = new RTCPeerConnection({ iceServers: options.iceServers || [] });
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  const stream = new MediaStream();
  pc.ontrack = (ev) => {
    stream.addTrack(ev.track);
    if (video.srcObject !== stream) {
      video.srcObject = stream;
    }
    const p = video.play();
    if (p && p.catch) {
      // Autoplay with sound needs a user gesture: fall back to muted.
      p.catch(() => { video.muted = true; video.play().catch(() => {}); });
    }
  };
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  const headers = { "Content-Type": "application/sdp" };
  if (options.token) {
    headers["Authorization"] = "Bearer " + options.token;
  }
  const resp = await fetch(url, { method: "POST", headers: headers, body: pc.localDescription.sdp });
  if (resp.status !== 201) {
    pc.close();
    throw new Error("WHEP POST " + url + ": " + resp.status + " " + (await resp.text()));
  }
  const location = resp.headers.get("Location");
  const resource = location ? new URL(location, new URL(url, document.baseURI)).href : null;
  const answer = await resp.text();
  await pc.setRemoteDescription({ type: "answer", sdp: answer });
  // The server keeps the video section of an audio-only call, without a
  // track (no a=msid or a=ssrc), or rejects it (port 0).
  const videoSection = ("\n" + answer).split(/\r?\nm=/).find((m) => m.startsWith("video "));
  const hasVideo = !!videoSection && !/^video 0 /.test(videoSection) &&
    !/\na=inactive/.test(videoSection) && /\na=(msid|ssrc):/.test(videoSection);
  return {
    pc: pc,
    resource: resource,
    audioOnly: !hasVideo,
    stop: async () => {
      pc.close();
      if (resource) {
        // keepalive: the DELETE still goes out when the page is unloading.
        try { await fetch(resource, { method: "DELETE", keepalive: true }); } catch (e) { /* gone */ }
      }
    },
  };
}
