package translate

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// awsFrames decodes b with the AWS SDK's decoder, frame by frame: the
// reference decodeFrame agrees with.
func awsFrames(b []byte) (msgs []eventstream.Message, err error) {
	var dec eventstream.Decoder
	r := bytes.NewReader(b)
	for r.Len() > 0 {
		m, err := dec.Decode(r, nil)
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, m.Clone())
	}
	return msgs, nil
}

// checkFrames feeds b to frames in pieces of n bytes and compares every
// message with the AWS SDK's decoding: the same headers (string values)
// and payloads, and an error exactly when the SDK fails on a whole frame.
func checkFrames(t *testing.T, b []byte, n int) {
	want, wantErr := awsFrames(b)
	var f frames
	var got []esMessage
	var gotErr error
	for i := 0; i < len(b) && gotErr == nil; i += n {
		gotErr = f.feed(b[i:min(i+n, len(b))], func(m esMessage) bool {
			// Copied: a message is valid only during the callback.
			got = append(got, esMessage{headers: bytes.Clone(m.headers), Payload: bytes.Clone(m.Payload)})
			return true
		})
	}
	if len(got) > len(want) {
		t.Fatalf("%d messages, the SDK decodes %d", len(got), len(want))
	}
	for i, m := range got {
		if !bytes.Equal(m.Payload, want[i].Payload) {
			t.Fatalf("message %d payload %q, the SDK's %q", i, m.Payload, want[i].Payload)
		}
		for _, h := range want[i].Headers {
			if h.Value.Get() == nil {
				continue
			}
			if s, ok := h.Value.(eventstream.StringValue); ok && string(m.header(h.Name)) != string(s) {
				t.Fatalf("message %d header %s %q, the SDK's %q", i, h.Name, m.header(h.Name), s)
			}
		}
	}
	// The SDK reads a truncated last frame as an error; frames waits for
	// the rest of it.
	truncated := wantErr != nil && len(got) == len(want) && gotErr == nil
	if (gotErr != nil) != (wantErr != nil) && !truncated {
		t.Fatalf("error %v, the SDK's %v", gotErr, wantErr)
	}
}

// TestFramesMatchSDK decodes the Bedrock stream fixtures, whole and in
// small pieces, as the AWS SDK does.
func TestFramesMatchSDK(t *testing.T) {
	ins, _ := filepath.Glob(filepath.Join("testdata", "bedrock", "stream_*.in.jsonl"))
	if len(ins) == 0 {
		t.Fatal("no fixtures")
	}
	for _, in := range ins {
		b := encodeFrames(t, in)
		for _, n := range []int{len(b), 1, 7, 64} {
			t.Run(filepath.Base(in), func(t *testing.T) { checkFrames(t, b, max(n, 1)) })
		}
	}
}

// FuzzFrames: frames never panics and agrees with the AWS SDK's decoder.
func FuzzFrames(f *testing.F) {
	ins, _ := filepath.Glob(filepath.Join("testdata", "bedrock", "stream_*.in.jsonl"))
	for _, in := range ins {
		f.Add(encodeFrames(f, in), 13)
	}
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n <= 0 || n > len(b) {
			n = len(b) + 1
		}
		checkFrames(t, b, n)
	})
}

// TestFramesInPlace: a chunk of whole frames is read without a copy or
// an allocation.
func TestFramesInPlace(t *testing.T) {
	b := encodeFrames(t, filepath.Join("testdata", "bedrock", "stream_text.in.jsonl"))
	var f frames
	n := 0
	allocs := testing.AllocsPerRun(10, func() {
		if err := f.feed(b, func(m esMessage) bool {
			if string(m.header(":message-type")) == "event" {
				n++
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || n == 0 {
		t.Fatalf("%v allocations per chunk, %d events", allocs, n)
	}
}
