package aac

import (
	"fmt"
	"testing"
)

type table struct {
	name   string
	code   []uint32
	length []uint8
}

func allTables() []table {
	var ts []table
	sc := make([]uint32, len(sfCode))
	copy(sc, sfCode[:])
	ts = append(ts, table{"scalefactor (Table 4.A.1)", sc, sfLen[:]})
	for n := 1; n <= 11; n++ {
		cb := codebooks[n]
		c := make([]uint32, len(cb.code))
		for i, v := range cb.code {
			c[i] = uint32(v)
		}
		ts = append(ts, table{fmt.Sprintf("spectrum codebook %d (Table 4.A.%d)", n, n+1), c, cb.length})
	}
	return ts
}

// Every table must be a complete prefix code: Kraft sum exactly 1, no
// codeword a prefix of another, and every codeword (written into a bit
// stream with others) decodes back to its own index.
func TestHuffmanTablesArePrefixCodes(t *testing.T) {
	wantSize := []int{121, 81, 81, 81, 81, 81, 81, 64, 64, 169, 169, 289}
	for ti, tb := range allTables() {
		if len(tb.code) != wantSize[ti] || len(tb.length) != wantSize[ti] {
			t.Fatalf("%s: %d codes, %d lengths, want %d", tb.name, len(tb.code), len(tb.length), wantSize[ti])
		}
		// Kraft sum in units of 2^-32.
		var kraft uint64
		for i, l := range tb.length {
			if l == 0 || l > 19 {
				t.Fatalf("%s: index %d has length %d", tb.name, i, l)
			}
			if tb.code[i]>>l != 0 {
				t.Fatalf("%s: index %d: code %#x longer than %d bits", tb.name, i, tb.code[i], l)
			}
			kraft += 1 << (32 - l)
		}
		if kraft != 1<<32 {
			t.Errorf("%s: Kraft sum %v, want 1", tb.name, float64(kraft)/(1<<32))
		}
		// Build a binary tree; a collision means a prefix or duplicate.
		type node struct {
			child [2]int
			leaf  int
		}
		nodes := []node{{leaf: -1}}
		for i, l := range tb.length {
			cur := 0
			for bit := int(l) - 1; bit >= 0; bit-- {
				if nodes[cur].leaf >= 0 {
					t.Fatalf("%s: code of %d has code of %d as prefix", tb.name, i, nodes[cur].leaf)
				}
				b := tb.code[i] >> uint(bit) & 1
				if nodes[cur].child[b] == 0 {
					nodes = append(nodes, node{leaf: -1})
					nodes[cur].child[b] = len(nodes) - 1
				}
				cur = nodes[cur].child[b]
			}
			if nodes[cur].leaf >= 0 || nodes[cur].child != [2]int{} {
				t.Fatalf("%s: code of %d collides", tb.name, i)
			}
			nodes[cur].leaf = i
		}
		// Round trip: write all codewords in a scrambled order, decode.
		var w bitWriter
		order := make([]int, 0, len(tb.code))
		for i := range tb.code {
			order = append(order, (i*37+11)%len(tb.code))
		}
		for _, i := range order {
			w.put(tb.code[i], uint(tb.length[i]))
		}
		w.align()
		r := bitReader{b: w.bytes()}
		for k, want := range order {
			cur := 0
			for nodes[cur].leaf < 0 {
				cur = nodes[cur].child[r.bit()]
				if cur == 0 {
					t.Fatalf("%s: fell off the tree at codeword %d", tb.name, k)
				}
			}
			if nodes[cur].leaf != want {
				t.Fatalf("%s: codeword %d decoded as %d, want %d", tb.name, k, nodes[cur].leaf, want)
			}
		}
	}
}

// Spot checks against the printed tables: the zero tuple of each codebook
// and a few extremes.
func TestHuffmanGolden(t *testing.T) {
	cases := []struct {
		cb, idx int
		code    uint16
		length  uint8
	}{
		{1, 40, 0x0, 1},      // (0,0,0,0)
		{2, 40, 0x0, 3},      // (0,0,0,0)
		{3, 0, 0x0, 1},       // (0,0,0,0)
		{4, 40, 0x0, 4},      // (1,1,1,1)
		{5, 40, 0x0, 1},      // (0,0)
		{7, 0, 0x0, 1},       // (0,0)
		{9, 168, 0x7fff, 15}, // (12,12)
		{11, 288, 0x004, 5},  // (16,16): both escaped
		{11, 0, 0x000, 4},    // (0,0)
	}
	for _, c := range cases {
		cb := codebooks[c.cb]
		if cb.code[c.idx] != c.code || cb.length[c.idx] != c.length {
			t.Errorf("codebook %d index %d: %#x/%d, want %#x/%d", c.cb, c.idx, cb.code[c.idx], cb.length[c.idx], c.code, c.length)
		}
	}
	if sfCode[60] != 0 || sfLen[60] != 1 {
		t.Errorf("scalefactor Δ0: %#x/%d, want 0/1", sfCode[60], sfLen[60])
	}
}
