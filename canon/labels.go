package canon

// The label table (DESIGN.md §11). Byte-exact ASCII; each names one purpose.
// PROTOCOL.md may add labels, always of the form "lanpeer/v1 <purpose>", and
// lists them here.
const (
	LabelRequestorHello    = "lanpeer/v1 requestor hello"
	LabelResponderHello    = "lanpeer/v1 responder hello"
	LabelRequestorFinished = "lanpeer/v1 requestor finished"

	// Key schedule (HKDF info).
	LabelC2S            = "lanpeer/v1 c2s"
	LabelS2C            = "lanpeer/v1 s2c"
	LabelAuthKeySeal    = "lanpeer/v1 auth key seal"
	LabelFinishedKey    = "lanpeer/v1 finished key"
	LabelRekey          = "lanpeer/v1 rekey"
	LabelRekeyConfirm   = "lanpeer/v1 rekey confirm"
	LabelChannelBinding = "EXPORTER-lanpeer/v1 channel binding"

	LabelKeyPackage  = "lanpeer/v1 key package"
	LabelRoomCommit  = "lanpeer/v1 room commit"
	LabelWrappedKey  = "lanpeer/v1 wrapped key"
	LabelRoomKeyWrap = "lanpeer/v1 room key wrap"
	LabelSenderKey   = "lanpeer/v1 sender key"
	LabelRoomMessage = "lanpeer/v1 room message"
	LabelRoomLeave   = "lanpeer/v1 room leave"

	LabelAnnounce        = "lanpeer/v1 announce"
	LabelDirectoryRecord = "lanpeer/v1 directory record"
	LabelHTTPRequest     = "lanpeer/v1 http request"

	// AEAD associated data.
	LabelRoomMessageAAD   = "lanpeer/v1 room message aad"
	LabelDirectMessageAAD = "lanpeer/v1 direct message aad"
	LabelAuthKeySealAAD   = "lanpeer/v1 auth key seal aad"
)

var labels = []string{
	LabelRequestorHello, LabelResponderHello, LabelRequestorFinished,
	LabelC2S, LabelS2C, LabelAuthKeySeal, LabelFinishedKey, LabelRekey, LabelRekeyConfirm,
	LabelChannelBinding,
	LabelKeyPackage, LabelRoomCommit, LabelWrappedKey, LabelRoomKeyWrap, LabelSenderKey,
	LabelRoomMessage, LabelRoomLeave,
	LabelAnnounce, LabelDirectoryRecord, LabelHTTPRequest,
	LabelRoomMessageAAD, LabelDirectMessageAAD, LabelAuthKeySealAAD,
}
