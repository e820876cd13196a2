package storagetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// BenchmarkRedeemCode measures RedeemCode, the store's part of every
// authorization_code grant: serially and from parallel goroutines, each
// redeeming codes of its own.
func BenchmarkRedeemCode(b *testing.B, newStore NewStore) {
	for _, parallel := range []bool{false, true} {
		b.Run(map[bool]string{false: "serial", true: "parallel"}[parallel], func(b *testing.B) {
			s := newStore(b)
			ctx := context.Background()
			hashes := make([]string, b.N)
			for i := range hashes {
				_, c := newCode(b, fmt.Sprint(i))
				c.ExpiresAt = t0.Add(time.Hour)
				if err := s.CreateCode(ctx, c); err != nil {
					b.Fatal(err)
				}
				hashes[i] = c.Hash
			}
			issued := storage.Issued{AccessTokenID: "jti", AccessTokenExpiresAt: t0.Add(time.Hour), RefreshFamilyID: "fam"}
			redeem := func(i int) {
				if _, err := s.RedeemCode(ctx, hashes[i], issued, t0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			if !parallel {
				for i := range b.N {
					redeem(i)
				}
				return
			}
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					redeem(int(next.Add(1) - 1))
				}
			})
		})
	}
}

// BenchmarkRotateRefreshToken measures RotateRefreshToken, the store's part
// of every refresh_token grant: each iteration rotates the newest token of
// a family, serially or with one family per goroutine.
func BenchmarkRotateRefreshToken(b *testing.B, newStore NewStore) {
	for _, parallel := range []bool{false, true} {
		b.Run(map[bool]string{false: "serial", true: "parallel"}[parallel], func(b *testing.B) {
			s := newStore(b)
			ctx := context.Background()
			var families atomic.Int64
			chain := func() func() {
				fam := fmt.Sprintf("fam-%d", families.Add(1))
				_, head := newRefreshToken(b, fam+"-0", fam)
				if err := s.CreateRefreshToken(ctx, head); err != nil {
					b.Fatal(err)
				}
				n := 0
				return func() {
					n++
					_, next := newRefreshToken(b, fmt.Sprintf("%s-%d", fam, n), "")
					if _, err := s.RotateRefreshToken(ctx, head.Hash, next, t0); err != nil {
						b.Fatal(err)
					}
					head = next
				}
			}
			b.ReportAllocs()
			if !parallel {
				rotate := chain()
				b.ResetTimer()
				for range b.N {
					rotate()
				}
				return
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rotate := chain()
				for pb.Next() {
					rotate()
				}
			})
		})
	}
}
