package kafka

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// frameOf encodes a request as a client would: size, header, body.
func frameOf(req kmsg.Request, version int16, corr int32, clientID string) []byte {
	req.SetVersion(version)
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	if req.IsFlexible() {
		b = append(b, 0) // no header tags
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func testAPIs() map[int16]*api { return (&Server{}).apiTable() }

func TestParseHeader(t *testing.T) {
	apis := testAPIs()
	meta := kmsg.NewPtrMetadataRequest()
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("t")}}
	for _, v := range []int16{1, 8} {
		frame := frameOf(meta, v, 42, "me")
		got, err := readFrame(bufio.NewReader(bytes.NewReader(frame)), 1<<20)
		require.NoError(t, err)
		h, req, body, err := parseHeader(got, apis)
		require.NoError(t, err)
		require.Equal(t, header{key: 3, version: v, corr: 42, clientID: "me"}, h)
		require.NoError(t, req.ReadFrom(body))
		require.Equal(t, "t", *req.(*kmsg.MetadataRequest).Topics[0].Topic)
	}
	// A flexible request (ApiVersions v3) with header tags.
	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "x", "1"
	frame := frameOf(av, 3, 7, "")
	got, err := readFrame(bufio.NewReader(bytes.NewReader(frame)), 1<<20)
	require.NoError(t, err)
	h, req, body, err := parseHeader(got, apis)
	require.NoError(t, err)
	require.Equal(t, int16(3), h.version)
	require.NoError(t, req.ReadFrom(body))

	unknown := frameOf(kmsg.NewPtrApiVersionsRequest(), 0, 1, "")[4:]
	binary.BigEndian.PutUint16(unknown, 9999)
	cases := map[string]struct {
		frame []byte
		want  error
	}{
		"unknown api":         {unknown, errUnknownAPI},
		"unsupported version": {frameOf(kmsg.NewPtrMetadataRequest(), 12, 1, "")[4:], errVersion},
		"produce v2":          {frameOf(kmsg.NewPtrProduceRequest(), 2, 1, "")[4:], errVersion},
		"cut header":          {[]byte{0, 3, 0, 1, 0, 0}, errMalformed},
		"client id overrun":   {[]byte{0, 3, 0, 1, 0, 0, 0, 1, 0, 50, 'a'}, errMalformed},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, _, err := parseHeader(c.frame, apis)
			require.ErrorIs(t, err, c.want)
		})
	}

	// ApiVersions at a version we do not know is answered, not refused.
	future := frameOf(kmsg.NewPtrApiVersionsRequest(), 3, 5, "")[4:]
	binary.BigEndian.PutUint16(future[2:], 99)
	h, req, _, err = parseHeader(future, apis)
	require.NoError(t, err)
	require.Nil(t, req)
	require.Equal(t, int16(99), h.version)
}

func TestReadFrameLimits(t *testing.T) {
	big := binary.BigEndian.AppendUint32(nil, 200<<20)
	_, err := readFrame(bufio.NewReader(bytes.NewReader(big)), 100<<20)
	require.ErrorIs(t, err, errFrameTooLarge)
	neg := binary.BigEndian.AppendUint32(nil, 0xffffffff)
	_, err = readFrame(bufio.NewReader(bytes.NewReader(neg)), 100<<20)
	require.ErrorIs(t, err, errMalformed)
	cut := append(binary.BigEndian.AppendUint32(nil, 100), make([]byte, 10)...)
	_, err = readFrame(bufio.NewReader(bytes.NewReader(cut)), 100<<20)
	require.ErrorIs(t, err, errMalformed)
}

// FuzzRequest feeds arbitrary frames through what the server does with a
// request before a handler sees it: frame size, header, body decoding.
// None of it may panic, whatever the bytes.
func FuzzRequest(f *testing.F) {
	meta := kmsg.NewPtrMetadataRequest()
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("topic")}}
	f.Add(frameOf(meta, 8, 1, "client"))
	prod := kmsg.NewPtrProduceRequest()
	prod.Acks = -1
	prod.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: []byte{1, 2, 3}}}}}
	f.Add(frameOf(prod, 7, 2, "p"))
	f.Add(frameOf(kmsg.NewPtrFetchRequest(), 11, 3, ""))
	f.Add(frameOf(kmsg.NewPtrApiVersionsRequest(), 3, 4, "x"))
	f.Add(frameOf(kmsg.NewPtrJoinGroupRequest(), 5, 5, "x"))
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0})
	apis := testAPIs()
	f.Fuzz(func(t *testing.T, b []byte) {
		frame, err := readFrame(bufio.NewReader(bytes.NewReader(b)), 1<<20)
		if err != nil {
			return
		}
		_, req, body, err := parseHeader(frame, apis)
		if err != nil || req == nil {
			return
		}
		if u, ok := req.(kmsg.UnsafeReadFrom); ok {
			_ = u.UnsafeReadFrom(body)
		} else {
			_ = req.ReadFrom(body)
		}
	})
}
