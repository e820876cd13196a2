package memory

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

// deviceAuthorizations are the device authorizations by Hash, and the
// Hash of each by UserCode.
type deviceAuthorizations struct {
	byHash     map[string]storage.DeviceAuthorization
	byUserCode map[string]string
}

func newDeviceAuthorizations() deviceAuthorizations {
	return deviceAuthorizations{byHash: map[string]storage.DeviceAuthorization{}, byUserCode: map[string]string{}}
}

// CreateDeviceAuthorization implements storage.DeviceStore.
func (s *Store) CreateDeviceAuthorization(_ context.Context, d storage.DeviceAuthorization, now time.Time) error {
	if err := d.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.devices.byHash[d.Hash]; ok {
		return storage.ErrAlreadyExists
	}
	if other, ok := s.devices.byUserCode[d.UserCode]; ok && live(s.devices.byHash[other].ExpiresAt, now) {
		return storage.ErrAlreadyExists
	}
	s.devices.byHash[d.Hash] = d.Clone()
	s.devices.byUserCode[d.UserCode] = d.Hash
	return nil
}

// GetDeviceAuthorizationByUserCode implements storage.DeviceStore.
func (s *Store) GetDeviceAuthorizationByUserCode(_ context.Context, userCode string, now time.Time) (storage.DeviceAuthorization, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.devices.byHash[s.devices.byUserCode[userCode]]
	if !ok || d.UserCode != userCode || !live(d.ExpiresAt, now) {
		return storage.DeviceAuthorization{}, storage.ErrNotFound
	}
	return d.Clone(), nil
}

// DecideDeviceAuthorization implements storage.DeviceStore.
func (s *Store) DecideDeviceAuthorization(_ context.Context, hash string, dec storage.DeviceDecision, now time.Time) error {
	if err := dec.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices.byHash[hash]
	if !ok {
		return storage.ErrNotFound
	}
	if err := d.Decide(dec, now); err != nil {
		return err
	}
	s.devices.byHash[hash] = d
	return nil
}

// PollDeviceAuthorization implements storage.DeviceStore.
func (s *Store) PollDeviceAuthorization(_ context.Context, hash, clientID string, issued storage.Issued, now time.Time) (storage.DeviceAuthorization, error) {
	if err := storage.ValidRedemption(issued); err != nil {
		return storage.DeviceAuthorization{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices.byHash[hash]
	if !ok {
		return storage.DeviceAuthorization{}, storage.ErrNotFound
	}
	changed, err := d.Poll(clientID, issued, now)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.DeviceAuthorization{}, err
	}
	if changed {
		s.devices.byHash[hash] = d
	}
	return d.Clone(), err
}

// deleteExpiredDevices removes the authorizations that expired
// DeviceExpiredRetention before now. The caller holds the lock.
func (s *Store) deleteExpiredDevices(now time.Time) int {
	n := 0
	for hash, d := range s.devices.byHash {
		if live(d.ExpiresAt.Add(storage.DeviceExpiredRetention), now) {
			continue
		}
		delete(s.devices.byHash, hash)
		if s.devices.byUserCode[d.UserCode] == hash {
			delete(s.devices.byUserCode, d.UserCode)
		}
		n++
	}
	return n
}
