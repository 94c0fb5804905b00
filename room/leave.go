package room

import (
	"errors"
	"fmt"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
)

// LeaveRequest is a verified leave request (DESIGN.md §5): a member asks to
// leave a room, signed with its identity key. The host applies it at once;
// the master's client turns it into a remove commit (MemberState.AcceptLeave
// then MemberState.Remove).
type LeaveRequest struct {
	Room   [RoomIDSize]byte
	Member cryptosuite.PeerID
	// Epoch is the latest epoch the member had verified when it signed:
	// a request older than the member's latest joining is refused.
	Epoch uint64
	Time  time.Time
}

// BuildLeaveRequest signs a request by id to leave room, whose latest
// verified epoch is epoch.
func BuildLeaveRequest(id *cryptosuite.Identity, room [RoomIDSize]byte, epoch uint64, now time.Time) ([]byte, error) {
	if epoch == 0 {
		return nil, errors.New("room: leave request for epoch 0")
	}
	if now.UnixMilli() < 0 {
		return nil, errors.New("room: leave request time before 1970")
	}
	return signIdentity(id, canon.LabelRoomLeave, canon.RoomLeave(room, id.PeerID(), epoch, uint64(now.UnixMilli())))
}

// VerifyLeaveRequest checks a leave request blob: size, the signature of
// member's identity key, the fields, and that the request names member.
func VerifyLeaveRequest(blob []byte, member *cryptosuite.PublicKey) (*LeaveRequest, error) {
	if member == nil {
		return nil, errors.New("room: VerifyLeaveRequest without the member's key")
	}
	layout, err := verifyIdentity(blob, canon.LabelRoomLeave, MaxLeaveBlob, member)
	if err != nil {
		return nil, err
	}
	lr := &LeaveRequest{}
	r := canon.NewReader(canon.LabelRoomLeave, layout)
	copy(lr.Room[:], r.Fixed(RoomIDSize))
	copy(lr.Member[:], r.Fixed(HashSize))
	lr.Epoch = r.Uint64()
	tms := r.Uint64()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: leave request: %v", ErrMalformed, err)
	}
	if lr.Epoch == 0 || tms > 1<<62 {
		return nil, fmt.Errorf("%w: leave request epoch or time out of range", ErrMalformed)
	}
	if lr.Member != member.PeerID() {
		return nil, fmt.Errorf("%w: leave request names %s, signed by %s", ErrBadSignature, lr.Member.Short(), member.PeerID().Short())
	}
	lr.Time = time.UnixMilli(int64(tms))
	return lr, nil
}
