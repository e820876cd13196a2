package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/server/storage"
)

const deviceColumns = `hash, user_code, client_id, scopes, resources, expires_at, interval_us, last_polled_at, status,
	subject, auth_time, session_id, redeemed_at, issued_access_token_id, issued_access_token_expires_at, issued_refresh_family_id`

func scanDevice(row pgx.Row) (storage.DeviceAuthorization, error) {
	var (
		d        storage.DeviceAuthorization
		interval int64
		polled   *time.Time
		status   string
	)
	err := row.Scan(&d.Hash, &d.UserCode, &d.ClientID, &d.Scopes, &d.Resources, &d.ExpiresAt, &interval, &polled, &status,
		&d.Subject, &d.AuthTime, &d.SessionID, &d.RedeemedAt, &d.Issued.AccessTokenID, &d.Issued.AccessTokenExpiresAt, &d.Issued.RefreshFamilyID)
	d.Interval, d.Status = time.Duration(interval)*time.Microsecond, storage.DeviceStatus(status)
	if polled != nil {
		d.LastPolledAt = *polled
	}
	return d, err
}

// CreateDeviceAuthorization implements storage.DeviceStore. The user code
// of an authorization that expired is freed first, in the same
// transaction, so that only a live one refuses it (the unique index does
// the refusing, also between replicas).
func (s *Store) CreateDeviceAuthorization(ctx context.Context, d storage.DeviceAuthorization, now time.Time) error {
	if err := d.Validate(); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM device_authorizations WHERE user_code = $1 AND expires_at <= $2", d.UserCode, now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO device_authorizations (hash, user_code, client_id, scopes, resources, expires_at, interval_us, status)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			d.Hash, d.UserCode, d.ClientID, scopes(d.Scopes), scopes(d.Resources), d.ExpiresAt, d.Interval.Microseconds(), string(d.Status))
		return err
	})
	switch {
	case isUniqueViolation(err):
		return storage.ErrAlreadyExists
	case err != nil:
		return wrap("create device authorization", err)
	}
	return nil
}

// GetDeviceAuthorizationByUserCode implements storage.DeviceStore.
func (s *Store) GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string, now time.Time) (storage.DeviceAuthorization, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM device_authorizations
		WHERE user_code = $1 AND expires_at > $2`, userCode, now))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.DeviceAuthorization{}, storage.ErrNotFound
	case err != nil:
		return storage.DeviceAuthorization{}, wrap("get device authorization", err)
	}
	return d, nil
}

// DecideDeviceAuthorization implements storage.DeviceStore: one
// conditional UPDATE, and only when it changes nothing a read to say why.
func (s *Store) DecideDeviceAuthorization(ctx context.Context, hash string, dec storage.DeviceDecision, now time.Time) error {
	if err := dec.Validate(); err != nil {
		return err
	}
	status := storage.DeviceDenied
	if dec.Approved {
		status = storage.DeviceApproved
	}
	tag, err := s.pool.Exec(ctx, `UPDATE device_authorizations SET status = $3, subject = $4, auth_time = $5, session_id = $6
		WHERE hash = $1 AND expires_at > $2 AND status = $7`,
		hash, now, string(status), dec.Subject, dec.AuthTime, dec.SessionID, string(storage.DevicePending))
	switch {
	case err != nil:
		return wrap("decide device authorization", err)
	case tag.RowsAffected() == 1:
		return nil
	}
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM device_authorizations WHERE hash = $1`, hash))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.ErrNotFound
	case err != nil:
		return wrap("decide device authorization", err)
	}
	return d.Decide(dec, now)
}

// PollDeviceAuthorization implements storage.DeviceStore. The row lock
// (SELECT … FOR UPDATE) serializes the polls of one device code across
// replicas; the decision is storage.DeviceAuthorization.Poll, as in every
// driver.
func (s *Store) PollDeviceAuthorization(ctx context.Context, hash, clientID string, issued storage.Issued, now time.Time) (storage.DeviceAuthorization, error) {
	if err := storage.ValidRedemption(issued); err != nil {
		return storage.DeviceAuthorization{}, err
	}
	var (
		d       storage.DeviceAuthorization
		outcome error
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if d, err = scanDevice(tx.QueryRow(ctx, `SELECT `+deviceColumns+` FROM device_authorizations WHERE hash = $1 FOR UPDATE`, hash)); err != nil {
			return err
		}
		var changed bool
		if changed, outcome = d.Poll(clientID, issued, now); !changed {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE device_authorizations SET interval_us = $2, last_polled_at = $3, redeemed_at = $4,
			issued_access_token_id = $5, issued_access_token_expires_at = $6, issued_refresh_family_id = $7
			WHERE hash = $1`,
			hash, d.Interval.Microseconds(), d.LastPolledAt, d.RedeemedAt,
			d.Issued.AccessTokenID, d.Issued.AccessTokenExpiresAt, d.Issued.RefreshFamilyID)
		return err
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows), errors.Is(outcome, storage.ErrNotFound):
		return storage.DeviceAuthorization{}, storage.ErrNotFound
	case err != nil:
		return storage.DeviceAuthorization{}, wrap("poll device authorization", err)
	}
	return d, outcome
}
