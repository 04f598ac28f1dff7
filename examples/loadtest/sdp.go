package main

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// offer is what the load callee needs from the gateway's SDP offer.
type offer struct {
	AudioAddr, VideoAddr netip.AddrPort // RTP destinations
	AudioPT, VideoPT     uint8          // PCMA and H.264 (packetization-mode 1)
}

// parseOffer reads the audio and video destinations and payload types of
// an SDP offer. It wants PCMA/8000 and H.264 in packetization mode 1 (an
// H.264 format without the parameter is taken if no other is offered).
func parseOffer(body []byte) (offer, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(body)); err != nil {
		return offer{}, fmt.Errorf("sdp: %w", err)
	}
	var o offer
	var haveAudio, haveVideo bool
	for _, md := range sd.MediaDescriptions {
		ci := md.ConnectionInformation
		if ci == nil {
			ci = sd.ConnectionInformation
		}
		if ci == nil || ci.Address == nil {
			return offer{}, errors.New("sdp: no connection address")
		}
		ip, err := netip.ParseAddr(ci.Address.Address)
		if err != nil {
			return offer{}, fmt.Errorf("sdp: connection address %q: %w", ci.Address.Address, err)
		}
		port := md.MediaName.Port.Value
		if port <= 0 || port > 65535 {
			continue // rejected or bad stream
		}
		addr := netip.AddrPortFrom(ip, uint16(port))
		rtpmap := map[string]string{} // payload type -> "enc/clock"
		fmtp := map[string]string{}
		for _, a := range md.Attributes {
			pt, rest, _ := strings.Cut(a.Value, " ")
			switch a.Key {
			case "rtpmap":
				rtpmap[pt] = strings.ToUpper(rest)
			case "fmtp":
				fmtp[pt] = strings.ToLower(rest)
			}
		}
		switch md.MediaName.Media {
		case "audio":
			for _, f := range md.MediaName.Formats {
				if f == "8" || strings.HasPrefix(rtpmap[f], "PCMA/8000") {
					n, err := strconv.ParseUint(f, 10, 7)
					if err == nil {
						o.AudioAddr, o.AudioPT, haveAudio = addr, uint8(n), true
						break
					}
				}
			}
		case "video":
			fallback := -1
			for _, f := range md.MediaName.Formats {
				if !strings.HasPrefix(rtpmap[f], "H264/90000") {
					continue
				}
				n, err := strconv.ParseUint(f, 10, 7)
				if err != nil {
					continue
				}
				if strings.Contains(fmtp[f], "packetization-mode=1") {
					o.VideoAddr, o.VideoPT, haveVideo = addr, uint8(n), true
					break
				}
				if fallback < 0 {
					fallback = int(n)
				}
			}
			if !haveVideo && fallback >= 0 {
				o.VideoAddr, o.VideoPT, haveVideo = addr, uint8(fallback), true
			}
		}
	}
	if !haveAudio || !haveVideo {
		return offer{}, errors.New("sdp: the offer needs PCMA/8000 audio and H.264 video")
	}
	return o, nil
}

// answerSDP is the load callee's answer: PCMA and H.264 (packetization
// mode 1, Constrained Baseline 3.0 like the clip), both sendonly.
func answerSDP(ip string, sessID uint64, audioPort, videoPort int, audioPT, videoPT uint8) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=loadtest %d 1 IN IP4 %s\r\ns=loadtest\r\nc=IN IP4 %s\r\nt=0 0\r\n", sessID, ip, ip)
	fmt.Fprintf(&b, "m=audio %d RTP/AVP %d\r\na=rtpmap:%d PCMA/8000\r\na=sendonly\r\n", audioPort, audioPT, audioPT)
	fmt.Fprintf(&b, "m=video %d RTP/AVP %d\r\na=rtpmap:%d H264/90000\r\na=fmtp:%d packetization-mode=1;profile-level-id=42c01e\r\na=sendonly\r\n",
		videoPort, videoPT, videoPT, videoPT)
	return []byte(b.String())
}

// ffmpegPT is the H.264 payload type of the ffmpeg comparison's SDP.
const ffmpegPT = 96

// ffmpegSDP is the SDP file one ffmpeg reads for one call: where to listen
// for the callee's H.264 and PCMA (RTCP one port above each).
func ffmpegSDP(videoPort, audioPort int) string {
	return fmt.Sprintf("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=loadtest\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=video %d RTP/AVP %d\r\na=rtpmap:%d H264/90000\r\na=fmtp:%d packetization-mode=1\r\n"+
		"m=audio %d RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n", videoPort, ffmpegPT, ffmpegPT, ffmpegPT, audioPort)
}
