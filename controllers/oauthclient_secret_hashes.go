package controllers

import (
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// maxSecretHashes is status.secretHashes' MaxItems.
const maxSecretHashes = 16

// secretHashes are the secrets a client's token server accepts, as
// status.secretHashes holds them: the current one without a not-after
// time, earlier ones until their grace period ends. The methods return new
// lists and never change the one they are called on.
type secretHashes []oauthv1.SecretHash

// current is the hash of the current secret, "" when there is none.
func (hs secretHashes) current() string {
	for _, h := range hs {
		if h.NotAfter == nil {
			return h.Hash
		}
	}
	return ""
}

// withCurrent makes hash the current secret. The previous current one
// stays valid until graceUntil, or is dropped at once when graceUntil is
// zero.
func (hs secretHashes) withCurrent(hash string, graceUntil time.Time) secretHashes {
	var kept secretHashes
	for _, h := range hs {
		if h.Hash == hash {
			continue
		}
		if h.NotAfter == nil {
			if graceUntil.IsZero() {
				continue
			}
			h.NotAfter = &metav1.Time{Time: graceUntil}
		}
		kept = append(kept, h)
	}
	return append(kept, oauthv1.SecretHash{Hash: hash})
}

// pruned drops hashes past their not-after time and, beyond MaxItems, the
// ones that expire first; nil when none is left.
func (hs secretHashes) pruned(now time.Time) secretHashes {
	hashes := slices.DeleteFunc(slices.Clone(hs), func(h oauthv1.SecretHash) bool {
		return h.NotAfter != nil && !now.Before(h.NotAfter.Time)
	})
	for len(hashes) > maxSecretHashes {
		oldest := -1
		for i, h := range hashes {
			if h.NotAfter != nil && (oldest < 0 || h.NotAfter.Before(hashes[oldest].NotAfter)) {
				oldest = i
			}
		}
		hashes = slices.Delete(hashes, oldest, oldest+1)
	}
	if len(hashes) == 0 {
		return nil
	}
	return hashes
}
