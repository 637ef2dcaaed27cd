package storage

// This file is the registry of every bucket in the data file and of the
// schema version. Buckets are created when the file is opened read-write.
//
// Layout (schema version 1):
//
//	meta              "schema_version" -> 8-byte big-endian uint64
//	audit             seq (8B BE, from NextSequence) -> audit record JSON
//	audit_by_subject  subject ‖ 0x00 ‖ seq (8B BE)   -> empty
//	audit_by_time     unixnano (8B BE) ‖ seq (8B BE)  -> empty
//	runs, approvals, devices, dedupe, provider_state, messages
//	                  key -> envelope (see state.go)
//
// Bump SchemaVersion whenever a key or value layout changes, and add the
// migration to Open. A file with a newer version than this binary knows is
// refused with ErrSchema.

// SchemaVersion is the layout version this binary writes and understands.
const SchemaVersion uint64 = 1

// Bucket names a state bucket (not the audit buckets, which are private).
type Bucket string

// State buckets.
const (
	Runs          Bucket = "runs"           // playbook runs, JSON, by run id
	Approvals     Bucket = "approvals"      // approval requests, by id
	Devices       Bucket = "devices"        // known devices, by user ‖ fingerprint
	Dedupe        Bucket = "dedupe"         // idempotency keys, by key
	ProviderState Bucket = "provider_state" // connector-owned state (the demo inventory)
	Messages      Bucket = "messages"       // posted Slack messages (channel, ts) by run/step
)

// stateBuckets lists every Bucket a caller may use.
var stateBuckets = []Bucket{Runs, Approvals, Devices, Dedupe, ProviderState, Messages}

// Private buckets.
var (
	bucketMeta           = []byte("meta")
	bucketAudit          = []byte("audit")
	bucketAuditBySubject = []byte("audit_by_subject")
	bucketAuditByTime    = []byte("audit_by_time")
)

// keySchemaVersion is the meta key holding the schema version.
var keySchemaVersion = []byte("schema_version")

// allBuckets is every bucket created at open.
func allBuckets() [][]byte {
	out := [][]byte{bucketMeta, bucketAudit, bucketAuditBySubject, bucketAuditByTime}
	for _, b := range stateBuckets {
		out = append(out, []byte(b))
	}
	return out
}

func validBucket(b Bucket) bool {
	for _, s := range stateBuckets {
		if s == b {
			return true
		}
	}
	return false
}
