package testmedia

import "testing"

func TestClipAccessUnits(t *testing.T) {
	aus := ClipAccessUnits()
	if len(aus) != ClipFrames {
		t.Fatalf("got %d access units, want %d", len(aus), ClipFrames)
	}
	for i, au := range aus {
		wantKey := i%ClipGOP == 0
		if au.Keyframe != wantKey {
			t.Fatalf("frame %d: keyframe=%v, want %v", i, au.Keyframe, wantKey)
		}
		if wantKey && (NALType(au.NALUs[0]) != 7 || NALType(au.NALUs[1]) != 8) {
			t.Fatalf("frame %d: IDR not preceded by SPS and PPS: types %d %d", i, NALType(au.NALUs[0]), NALType(au.NALUs[1]))
		}
	}
}

func TestGoertzel(t *testing.T) {
	tone := Tone(1000, 8000, 0, 800, 0.5)
	if p := Goertzel(tone, 8000, 1000); p < 0.9 {
		t.Fatalf("1 kHz tone: power fraction at 1 kHz = %.3f, want ≥ 0.9", p)
	}
	if p := Goertzel(tone, 8000, 1400); p > 0.05 {
		t.Fatalf("1 kHz tone: power fraction at 1.4 kHz = %.3f, want ≤ 0.05", p)
	}
	if p := Goertzel(make([]int16, 800), 8000, 1000); p != 0 {
		t.Fatalf("silence: %.3f, want 0", p)
	}
}
