package wire

import (
	"reflect"
	"testing"
)

// TestKeysMatchTags: the decoders' key tables and the structs' msgpack
// tags (which the encoder uses) list the same keys in the same order, and
// every key fits the decoders' key buffer and seen-bitmask.
func TestKeysMatchTags(t *testing.T) {
	for _, tc := range []struct {
		v    any
		keys []string
	}{
		{Hello{}, helloKeys},
		{HelloReply{}, helloReplyKeys},
		{Finished{}, finishedKeys},
		{Ready{}, readyKeys},
		{Error{}, errorKeys},
		{StreamOpen{}, streamOpenKeys},
		{DirectMessage{}, directMessageKeys},
		{RekeyInit{}, rekeyInitKeys},
		{RekeyReply{}, rekeyReplyKeys},
		{RekeyConfirm{}, rekeyConfirmKeys},
		{RekeyRequest{}, rekeyRequestKeys},
		{PublishKeyPackage{}, publishKeyPackageKeys},
		{CreateRoom{}, createRoomKeys},
		{UploadWrappedKey{}, uploadWrappedKeyKeys},
		{ListRooms{}, listRoomsKeys},
		{RoomInfo{}, roomInfoKeys},
		{CommitRoom{}, commitRoomKeys},
		{LeaveRoom{}, leaveRoomKeys},
		{DeleteRoom{}, deleteRoomKeys},
		{SendMessage{}, sendMessageKeys},
		{ReadMessages{}, readMessagesKeys},
		{FetchWrappedKey{}, fetchWrappedKeyKeys},
		{AckEpoch{}, ackEpochKeys},
		{FetchCommits{}, fetchCommitsKeys},
		{FetchKeyPackage{}, fetchKeyPackageKeys},
		{FetchLeave{}, fetchLeaveKeys},
		{Ack{}, nil},
		{RoomList{}, roomListKeys},
		{RoomEntry{}, roomEntryKeys},
		{RoomInfoReply{}, roomInfoReplyKeys},
		{MemberEntry{}, memberEntryKeys},
		{MessageStored{}, messageStoredKeys},
		{MessageList{}, messageListKeys},
		{StoredMessage{}, storedMessageKeys},
		{WrappedKeyReply{}, wrappedKeyReplyKeys},
		{CommitList{}, commitListKeys},
		{KeyPackageReply{}, keyPackageReplyKeys},
		{LeaveReply{}, leaveReplyKeys},
		{RoomError{}, roomErrorKeys},
		{MessagePush{}, messagePushKeys},
		{KeySyncPush{}, keySyncPushKeys},
		{MembershipPush{}, membershipPushKeys},
		{PushesLost{}, pushesLostKeys},
	} {
		typ := reflect.TypeOf(tc.v)
		var tags []string
		for i := 0; i < typ.NumField(); i++ {
			tags = append(tags, typ.Field(i).Tag.Get("msgpack"))
		}
		if !reflect.DeepEqual(tags, tc.keys) {
			t.Errorf("%s: tags %q, decoder keys %q", typ.Name(), tags, tc.keys)
		}
		if len(tc.keys) > 32 {
			t.Errorf("%s: %d keys overflow the seen bitmask", typ.Name(), len(tc.keys))
		}
		for _, k := range tc.keys {
			if len(k) == 0 || len(k) > maxKeySize {
				t.Errorf("%s: key %q longer than maxKeySize", typ.Name(), k)
			}
		}
	}
}
