package httpshim

import (
	"encoding/hex"
	"net/http"
	"strconv"

	"github.com/lanpeer/lanpeer/wire"
)

// The room endpoints: each decodes its JSON into the TCP protocol's
// request, runs it through the Service's dispatch with the session's peer
// (node.Service.Handle, the TCP front end's path), and maps the reply back
// to JSON.

// body decodes the request's JSON into v, answering 400 on failure.
func (q *request) decode(v any, required ...string) bool {
	if err := decodeStrict(q.body, v, required, nil); err != nil {
		q.fail(newAPIError(codeProtocol, "%s", trimPrefix(err.Error())))
		return false
	}
	return true
}

// run runs m and answers its refusal; the reply on success.
func (q *request) run(m wire.Message) (wire.Message, bool) {
	reply, err := q.s.op(q, m)
	if err != nil {
		q.fail(roomError(err))
		return nil, false
	}
	return reply, true
}

// noQuery refuses any query parameter.
func (q *request) noQuery() bool {
	_, ok := q.query()
	return ok
}

var emptyObject = struct{}{}

func (s *Server) publishKeyPackage(q *request) {
	var v struct {
		KeyPackage []byte `json:"key_package"`
	}
	if !q.noQuery() || !q.decode(&v, "key_package") {
		return
	}
	if _, ok := q.run(&wire.PublishKeyPackage{KeyPackage: v.KeyPackage}); ok {
		writeJSON(q.w, http.StatusOK, emptyObject)
	}
}

type keyPackageJSON struct {
	KeyPackage []byte `json:"key_package"`
}

func (s *Server) fetchKeyPackage(q *request) {
	h, ok := q.hexPath("hash", wire.HashSize)
	if !ok || !q.noQuery() {
		return
	}
	if r, ok := q.run(&wire.FetchKeyPackage{Hash: h}); ok {
		writeJSON(q.w, http.StatusOK, keyPackageJSON{KeyPackage: r.(*wire.KeyPackageReply).KeyPackage})
	}
}

func (s *Server) latestKeyPackage(q *request) {
	p, ok := q.hexPath("peer", wire.PeerIDSize)
	if !ok || !q.noQuery() {
		return
	}
	if r, ok := q.run(&wire.FetchKeyPackage{Peer: p}); ok {
		writeJSON(q.w, http.StatusOK, keyPackageJSON{KeyPackage: r.(*wire.KeyPackageReply).KeyPackage})
	}
}

func (s *Server) createRoom(q *request) {
	var v struct {
		Commit []byte `json:"commit"`
	}
	if !q.noQuery() || !q.decode(&v, "commit") {
		return
	}
	m := &wire.CreateRoom{Commit: v.Commit}
	if err := m.Validate(); err != nil {
		q.fail(roomError(err))
		return
	}
	ctx, cancel := s.opContext(q.r)
	defer cancel()
	// CreateRoom is what the dispatch runs for this request; it also
	// tells the room id, which the TCP client reads from its own commit.
	id, err := s.svc.CreateRoom(ctx, q.sess.peer, m.Commit)
	if err != nil {
		q.fail(roomError(err))
		return
	}
	writeJSON(q.w, http.StatusOK, struct {
		Room string `json:"room"`
	}{Room: id.String()})
}

func (s *Server) listRooms(q *request) {
	qv, ok := q.query("after", "limit")
	if !ok {
		return
	}
	limit, ok := q.uintParam(qv, "limit", 100, 1, wire.MaxListLimit)
	if !ok {
		return
	}
	m := &wire.ListRooms{Limit: uint16(limit)}
	if a, set := qv["after"]; set {
		b, err := parseHexID("after", a, wire.RoomIDSize)
		if err != nil {
			q.fail(newAPIError(codeProtocol, "%s", trimPrefix(err.Error())))
			return
		}
		m.After = b
	}
	r, ok := q.run(m)
	if !ok {
		return
	}
	rooms := r.(*wire.RoomList).Rooms
	out := struct {
		Rooms []RoomEntryJSON `json:"rooms"`
	}{Rooms: make([]RoomEntryJSON, len(rooms))}
	for i, e := range rooms {
		out.Rooms[i] = RoomEntryJSON{
			Room: hex.EncodeToString(e.Room), Name: string(e.Name), Master: hex.EncodeToString(e.Master),
			Suite: e.Suite, Epoch: e.Epoch, Head: hex.EncodeToString(e.Head), Created: e.Created,
			Role: roleName(e.Role == wire.RoleMaster), Left: e.Left,
		}
	}
	writeJSON(q.w, http.StatusOK, out)
}

func (s *Server) roomInfo(q *request) {
	id, ok := q.roomID()
	if !ok {
		return
	}
	qv, ok := q.query("after", "limit")
	if !ok {
		return
	}
	limit, ok := q.uintParam(qv, "limit", wire.MaxInfoMembers, 1, wire.MaxInfoMembers)
	if !ok {
		return
	}
	m := &wire.RoomInfo{Room: id[:], Limit: uint16(limit)}
	if a, set := qv["after"]; set {
		b, err := parseHexID("after", a, wire.PeerIDSize)
		if err != nil {
			q.fail(newAPIError(codeProtocol, "%s", trimPrefix(err.Error())))
			return
		}
		m.After = b
	}
	r, ok := q.run(m)
	if !ok {
		return
	}
	// The dispatch adds the master's key, as over TCP (node.Service).
	ri := r.(*wire.RoomInfoReply)
	out := RoomInfoJSON{
		Room: hex.EncodeToString(ri.Room), Name: string(ri.Name), Master: hex.EncodeToString(ri.Master), MasterKey: ri.MasterKey,
		Suite: ri.Suite, Epoch: ri.Epoch, Head: hex.EncodeToString(ri.Head), Created: ri.Created,
		First: ri.First, Last: ri.Last, More: ri.More, Members: make([]MemberJSON, len(ri.Members)),
	}
	for i, me := range ri.Members {
		out.Members[i] = MemberJSON{
			Peer: hex.EncodeToString(me.Peer), Role: roleName(me.Role == wire.RoleMaster),
			KeyPackageHash: hex.EncodeToString(me.KeyPackage), Acked: me.Acked, Left: me.Left,
		}
	}
	writeJSON(q.w, http.StatusOK, out)
}

func (s *Server) deleteRoom(q *request) {
	id, ok := q.roomID()
	if !ok || !q.noQuery() {
		return
	}
	if _, ok := q.run(&wire.DeleteRoom{Room: id[:]}); ok {
		writeJSON(q.w, http.StatusOK, emptyObject)
	}
}

func (s *Server) commit(q *request) {
	id, ok := q.roomID()
	if !ok || !q.noQuery() {
		return
	}
	var v struct {
		Commit []byte `json:"commit"`
	}
	if !q.decode(&v, "commit") {
		return
	}
	m := &wire.CommitRoom{Room: id[:], Commit: v.Commit}
	if err := m.Validate(); err != nil {
		q.fail(roomError(err))
		return
	}
	ctx, cancel := s.opContext(q.r)
	defer cancel()
	// Service.Commit is what the dispatch runs; it also returns the epoch.
	epoch, err := s.svc.Commit(ctx, q.sess.peer, id, m.Commit)
	if err != nil {
		q.fail(roomError(err))
		return
	}
	writeJSON(q.w, http.StatusOK, struct {
		Epoch uint64 `json:"epoch"`
	}{Epoch: epoch})
}

func (s *Server) fetchCommits(q *request) {
	id, ok := q.roomID()
	if !ok {
		return
	}
	qv, ok := q.query("after", "limit")
	if !ok {
		return
	}
	after, ok1 := q.uintParam(qv, "after", 0, 0, wire.MaxSeq)
	limit, ok2 := q.uintParam(qv, "limit", 100, 1, wire.MaxListLimit)
	if !ok1 || !ok2 {
		return
	}
	r, ok := q.run(&wire.FetchCommits{Room: id[:], After: after, Limit: uint16(limit)})
	if !ok {
		return
	}
	cl := r.(*wire.CommitList)
	ctx, cancel := s.opContext(q.r)
	defer cancel()
	rm, err := s.svc.Host().Store().GetRoom(ctx, id)
	if err != nil {
		q.fail(roomError(err))
		return
	}
	out := CommitListJSON{Commits: cl.Commits, Epoch: cl.Epoch, Master: rm.Master.String(), MasterKey: cl.MasterKey}
	if out.Commits == nil {
		out.Commits = [][]byte{}
	}
	writeJSON(q.w, http.StatusOK, out)
}

func (s *Server) uploadWrappedKey(q *request) {
	id, ok := q.roomID()
	if !ok || !q.noQuery() {
		return
	}
	var v struct {
		Wrapped []byte `json:"wrapped"`
	}
	if !q.decode(&v, "wrapped") {
		return
	}
	if _, ok := q.run(&wire.UploadWrappedKey{Room: id[:], Wrapped: v.Wrapped}); ok {
		writeJSON(q.w, http.StatusOK, emptyObject)
	}
}

func (s *Server) fetchWrappedKey(q *request) {
	id, ok := q.roomID()
	if !ok || !q.noQuery() {
		return
	}
	epoch, err := strconv.ParseUint(q.r.PathValue("epoch"), 10, 64)
	if err != nil || epoch < 1 || epoch > wire.MaxSeq {
		q.fail(newAPIError(codeProtocol, "the epoch must be a decimal from 1 to %d", uint64(wire.MaxSeq)))
		return
	}
	if r, ok := q.run(&wire.FetchWrappedKey{Room: id[:], Epoch: epoch}); ok {
		writeJSON(q.w, http.StatusOK, struct {
			Wrapped []byte `json:"wrapped"`
		}{Wrapped: r.(*wire.WrappedKeyReply).Wrapped})
	}
}

func (s *Server) ack(q *request) {
	id, ok := q.roomID()
	if !ok || !q.noQuery() {
		return
	}
	var v struct {
		Epoch uint64 `json:"epoch"`
	}
	if !q.decode(&v, "epoch") {
		return
	}
	if _, ok := q.run(&wire.AckEpoch{Room: id[:], Epoch: v.Epoch}); ok {
		writeJSON(q.w, http.StatusOK, emptyObject)
	}
}

func (s *Server) leave(q *request) {
	id, ok := q.roomID()
	if !ok || !q.noQuery() {
		return
	}
	var v struct {
		Leave []byte `json:"leave"`
	}
	if !q.decode(&v, "leave") {
		return
	}
	if _, ok := q.run(&wire.LeaveRoom{Room: id[:], Leave: v.Leave}); ok {
		writeJSON(q.w, http.StatusOK, emptyObject)
	}
}

func (s *Server) fetchLeave(q *request) {
	id, ok := q.roomID()
	if !ok {
		return
	}
	p, ok := q.hexPath("peer", wire.PeerIDSize)
	if !ok || !q.noQuery() {
		return
	}
	if r, ok := q.run(&wire.FetchLeave{Room: id[:], Peer: p}); ok {
		writeJSON(q.w, http.StatusOK, struct {
			Leave []byte `json:"leave"`
		}{Leave: r.(*wire.LeaveReply).Leave})
	}
}

func (s *Server) sendMessage(q *request) {
	id, ok := q.roomID()
	if !ok || !q.noQuery() {
		return
	}
	msg, ok := decodeOneBytes(q.body, "message")
	if !ok {
		var v struct {
			Message []byte `json:"message"`
		}
		if !q.decode(&v, "message") {
			return
		}
		msg = v.Message
	}
	r, ok := q.run(&wire.SendMessage{Room: id[:], Message: msg})
	if !ok {
		return
	}
	s.met.messagesIn.Inc()
	ms := r.(*wire.MessageStored)
	// {"seq":N,"stored":N}, as json.Marshal writes it.
	b := make([]byte, 0, 64)
	b = strconv.AppendUint(append(b, `{"seq":`...), ms.Seq, 10)
	b = strconv.AppendInt(append(b, `,"stored":`...), ms.Stored, 10)
	writeJSONBytes(q.w, http.StatusOK, append(b, "}\n"...))
}
