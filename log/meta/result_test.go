package meta

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResultRoundTrip(t *testing.T) {
	cases := []Result{
		{},
		{Value: 1<<64 - 1},
		{Value: 7, Version: 3},
		{Code: CodeTopicExists, Message: `meta: topic already exists: "t"`},
		{Code: CodeInvalidConfig},
		{Value: 2, Items: []Code{CodeOK, CodeUnknownTopic, CodeMetadataTooLarge}},
		{Code: CodeInvalidSchema, Message: "ünïcode", Value: 1, Version: 1 << 40, Items: []Code{numCodes - 1}},
	}
	for _, r := range cases {
		value, data := EncodeResult(r)
		got, err := DecodeResult(value, data)
		require.NoError(t, err)
		require.Equal(t, r, got)
	}
	_, data := EncodeResult(Result{Value: 5})
	require.Nil(t, data, "a plain success carries no data")
}

func TestDecodeResultRefuses(t *testing.T) {
	_, good := EncodeResult(Result{Code: CodeInvalidTopic, Message: "m", Items: []Code{CodeOK}})
	cases := map[string][]byte{
		"other format":        append([]byte{2}, good[1:]...),
		"truncated":           good[:len(good)-1],
		"trailing byte":       append(append([]byte(nil), good...), 0),
		"unknown code":        {1, byte(numCodes), 0, 0, 0},
		"unknown item code":   {1, 0, 0, 0, 1, byte(numCodes)},
		"message beyond data": {1, 1, 0, 9, 'a'},
		"item count too big":  {1, 0, 0, 0, 5, 0},
		"bad varint":          {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	}
	for name, data := range cases {
		_, err := DecodeResult(0, data)
		require.ErrorIs(t, err, ErrBadResult, name)
	}
}

func TestResultErr(t *testing.T) {
	require.NoError(t, Result{Value: 3}.Err())
	for c := Code(1); c < numCodes; c++ {
		sentinel := c.Err()
		require.Error(t, sentinel)
		require.Equal(t, c, CodeOf(sentinel))
		require.Equal(t, c, CodeOf(fmt.Errorf("wrapped: %w", sentinel)))
		require.Equal(t, sentinel.Error(), c.String())

		err := Result{Code: c, Message: "the message"}.Err()
		require.ErrorIs(t, err, sentinel)
		require.Equal(t, "the message", err.Error())
		require.Equal(t, sentinel, Result{Code: c}.Err())
	}
	require.Equal(t, CodeOK, CodeOf(nil))
	require.Equal(t, CodeBadCommand, CodeOf(errors.New("not ours")))
	require.ErrorIs(t, Result{Code: numCodes}.Err(), ErrBadResult)
	require.Equal(t, "ok", CodeOK.String())
	require.Equal(t, "meta: code 999", Code(999).String())
	require.NoError(t, Result{Items: []Code{CodeOK}}.ItemErr(0))
	require.NoError(t, Result{}.ItemErr(3))

	// A refusal from Apply carries the sentinel and the detail.
	s := cluster(t, 1)
	mustApply(t, s, topic("t", 1, 1))
	err := s.Apply(Encode(topic("t", 2, 1))).Err()
	require.ErrorIs(t, err, ErrTopicExists)
	require.Equal(t, `meta: topic already exists: "t"`, err.Error())
}
