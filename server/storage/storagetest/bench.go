package storagetest

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// BenchmarkRedeemCode measures RedeemCode, the store's part of every
// authorization_code grant.
//
// serial redeems codes created beforehand, in chunks, deleting each chunk
// once it has expired so that the store stays the size a live server's
// would be. parallel measures one code's life, CreateCode then RedeemCode,
// from concurrent goroutines.
func BenchmarkRedeemCode(b *testing.B, newStore NewStore) {
	issued := storage.Issued{AccessTokenID: "jti", AccessTokenExpiresAt: t0.Add(time.Hour), RefreshFamilyID: "fam"}
	b.Run("serial", func(b *testing.B) {
		s := newStore(b)
		ctx := context.Background()
		const chunk = 2000
		_, c := newCode(b, "bench")
		hashes := make([]string, 0, chunk)
		b.ReportAllocs()
		for done, round := 0, 0; done < b.N; round++ {
			b.StopTimer()
			// Round r's codes live in [now, now+1m): later rounds
			// delete them.
			now := t0.Add(time.Duration(round) * time.Hour)
			if _, err := s.DeleteExpired(ctx, now); err != nil {
				b.Fatal(err)
			}
			c.ExpiresAt = now.Add(time.Minute)
			hashes = hashes[:0]
			for i := range min(chunk, b.N-done) {
				c.Hash = storage.HashToken(fmt.Sprintf("%d/%d", round, i))
				if err := s.CreateCode(ctx, c); err != nil {
					b.Fatal(err)
				}
				hashes = append(hashes, c.Hash)
			}
			b.StartTimer()
			for _, h := range hashes {
				if _, _, err := s.RedeemCode(ctx, h, issued, nil, now); err != nil {
					b.Fatal(err)
				}
			}
			done += len(hashes)
		}
	})
	b.Run("parallel-create-and-redeem", func(b *testing.B) {
		s := newStore(b)
		ctx := context.Background()
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			_, c := newCode(b, "bench")
			for pb.Next() {
				c.Hash = storage.HashToken(strconv.FormatInt(next.Add(1), 10))
				if err := s.CreateCode(ctx, c); err != nil {
					b.Fatal(err)
				}
				if _, _, err := s.RedeemCode(ctx, c.Hash, issued, nil, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkRedeemCodeWithRefreshToken measures the store's part of an
// authorization_code grant that issues a refresh token: one-statement is
// RedeemCode with a FirstRefresh, the token endpoint's path; then-create
// is RedeemCode then CreateRefreshToken, its path before (and its fallback
// for a store that does not store the token with the redemption). Codes
// are created beforehand, outside the timer, in chunks.
func BenchmarkRedeemCodeWithRefreshToken(b *testing.B, newStore NewStore) {
	ctx := context.Background()
	c := offlineCode(b, "bench")
	issue := func(round, i int) (storage.Issued, *storage.FirstRefresh) {
		name := fmt.Sprintf("%d/%d", round, i)
		first := firstRefreshFor(b, "rt/"+name, c)
		return storage.Issued{AccessTokenID: "jti/" + name, AccessTokenExpiresAt: t0.Add(time.Hour), RefreshFamilyID: "fam/" + name}, first
	}
	b.Run("one-statement", func(b *testing.B) {
		redeemChunks(b, newStore(b), c, func(s storage.Store, hash string, round, i int, now time.Time) error {
			issued, first := issue(round, i)
			_, stored, err := s.RedeemCode(ctx, hash, issued, first, now)
			if err == nil && !stored {
				err = fmt.Errorf("refresh token not stored")
			}
			return err
		})
	})
	b.Run("then-create", func(b *testing.B) {
		redeemChunks(b, newStore(b), c, func(s storage.Store, hash string, round, i int, now time.Time) error {
			issued, first := issue(round, i)
			code, _, err := s.RedeemCode(ctx, hash, issued, nil, now)
			if err != nil {
				return err
			}
			t, _ := first.Token(code, issued.RefreshFamilyID, now)
			return s.CreateRefreshToken(ctx, t)
		})
	})
}

// redeemChunks calls redeem b.N times, each on a code of its own created
// (like c) before the timer runs, a chunk at a time.
func redeemChunks(b *testing.B, s storage.Store, c storage.AuthCode, redeem func(s storage.Store, hash string, round, i int, now time.Time) error) {
	ctx := context.Background()
	const chunk = 2000
	hashes := make([]string, 0, chunk)
	b.ReportAllocs()
	for done, round := 0, 0; done < b.N; round++ {
		b.StopTimer()
		c.ExpiresAt = t0.Add(time.Minute)
		hashes = hashes[:0]
		for i := range min(chunk, b.N-done) {
			c.Hash = storage.HashToken(fmt.Sprintf("%s/%d/%d", b.Name(), round, i))
			if err := s.CreateCode(ctx, c); err != nil {
				b.Fatal(err)
			}
			hashes = append(hashes, c.Hash)
		}
		b.StartTimer()
		for i, h := range hashes {
			if err := redeem(s, h, round, i, t0); err != nil {
				b.Fatal(err)
			}
		}
		done += len(hashes)
	}
}

// BenchmarkRotateRefreshToken measures RotateRefreshToken, the store's part
// of every refresh_token grant: each iteration rotates the newest token of
// a family. serial starts a new family every chunk of rotations and deletes
// the old ones once expired, so the store stays a live server's size;
// parallel gives every goroutine a family of its own.
func BenchmarkRotateRefreshToken(b *testing.B, newStore NewStore) {
	b.Run("serial", func(b *testing.B) {
		s := newStore(b)
		ctx := context.Background()
		const chunk = 2000
		b.ReportAllocs()
		for done, round := 0, 0; done < b.N; round++ {
			b.StopTimer()
			now := t0.Add(time.Duration(round) * time.Hour)
			if _, err := s.DeleteExpired(ctx, now); err != nil {
				b.Fatal(err)
			}
			_, head := newRefreshToken(b, fmt.Sprintf("round-%d", round), fmt.Sprintf("fam-%d", round))
			head.ExpiresAt = now.Add(time.Minute)
			if err := s.CreateRefreshToken(ctx, head); err != nil {
				b.Fatal(err)
			}
			next := head
			next.FamilyID = ""
			n := min(chunk, b.N-done)
			b.StartTimer()
			for i := range n {
				next.Hash = storage.HashToken(fmt.Sprintf("%d/%d", round, i))
				if _, err := s.RotateRefreshToken(ctx, head.Hash, next, now); err != nil {
					b.Fatal(err)
				}
				head.Hash = next.Hash
			}
			done += n
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s := newStore(b)
		ctx := context.Background()
		var families, tokens atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			_, head := newRefreshToken(b, "bench", fmt.Sprintf("fam-%d", families.Add(1)))
			head.Hash = storage.HashToken(strconv.FormatInt(tokens.Add(1), 10))
			if err := s.CreateRefreshToken(ctx, head); err != nil {
				b.Fatal(err)
			}
			next := head
			next.FamilyID = ""
			for pb.Next() {
				next.Hash = storage.HashToken(strconv.FormatInt(tokens.Add(1), 10))
				if _, err := s.RotateRefreshToken(ctx, head.Hash, next, t0); err != nil {
					b.Fatal(err)
				}
				head.Hash = next.Hash
			}
		})
	})
}
