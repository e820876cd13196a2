package memory_test

import (
	"testing"

	"github.com/gatehouse-dev/gatehouse/server/storage"
	"github.com/gatehouse-dev/gatehouse/server/storage/memory"
	"github.com/gatehouse-dev/gatehouse/server/storage/storagetest"
)

func newStore(testing.TB) storage.Store { return memory.New() }

func TestConformance(t *testing.T) { storagetest.Run(t, newStore) }

func BenchmarkRedeemCode(b *testing.B) { storagetest.BenchmarkRedeemCode(b, newStore) }

func BenchmarkRedeemCodeWithRefreshToken(b *testing.B) {
	storagetest.BenchmarkRedeemCodeWithRefreshToken(b, newStore)
}

func BenchmarkRotateRefreshToken(b *testing.B) { storagetest.BenchmarkRotateRefreshToken(b, newStore) }
