package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/oauth2"
)

// logIn asks the person to log in: in a browser on this host (the
// authorization code flow on a loopback redirect, interactive), or with a
// code on any other device (the device flow, device). The device flow is
// used with --device, and also without it when no browser can open here
// (canOpenBrowser), --open-browser is on, and the issuer offers it;
// --device=false always keeps the browser flow.
func (l *login) logIn() (string, error) {
	if l.flags.device {
		return l.device()
	}
	if !l.flags.deviceSet && l.flags.openBrowser && l.oauth.Endpoint.DeviceAuthURL != "" {
		if ok, why := canOpenBrowser(); !ok {
			fmt.Fprintf(l.stderr, "gatehouse login: no browser can open here (%s): log in on another device instead (--device=false to keep to this host)\n", why)
			return l.device()
		}
	}
	return l.interactive()
}

// canOpenBrowser reports whether openBrowser can show a page to the person
// at this machine, and if not, why; tests replace it.
var canOpenBrowser = func() (bool, string) {
	return browserReachable(os.Getenv, exec.LookPath, runtime.GOOS)
}

// browserReachable is canOpenBrowser's rule. On macOS, `open` shows the
// page on the Mac's screen, which is the person's unless they came in over
// SSH (SSH_CONNECTION or SSH_TTY set). Elsewhere xdg-open needs a
// graphical session: DISPLAY (X11, also forwarded over SSH) or
// WAYLAND_DISPLAY. Without xdg-open or open there is nothing to run.
func browserReachable(getenv func(string) string, lookPath func(string) (string, error), goos string) (bool, string) {
	if goos == "darwin" {
		if getenv("SSH_CONNECTION") != "" || getenv("SSH_TTY") != "" {
			return false, "an SSH session on macOS"
		}
		if _, err := lookPath("open"); err != nil {
			return false, "no open command"
		}
		return true, ""
	}
	if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
		return false, "neither DISPLAY nor WAYLAND_DISPLAY is set"
	}
	if _, err := lookPath("xdg-open"); err != nil {
		return false, "no xdg-open on PATH"
	}
	return true, ""
}

// device runs the device authorization grant (RFC 8628): it asks the
// issuer for a code, tells the person where to enter it, and polls the
// token endpoint at the interval the issuer set (slowing down when told)
// until the person approves, denies, or the code expires. There is no
// nonce in this flow: the ID token comes straight from the token endpoint
// to this process.
func (l *login) device() (string, error) {
	if l.oauth.Endpoint.DeviceAuthURL == "" {
		return "", fmt.Errorf("%s offers no device flow (no device_authorization_endpoint in its discovery document)", l.flags.issuer)
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.flags.timeout)
	defer cancel()
	da, err := l.oauth.DeviceAuth(ctx)
	if err != nil {
		return "", fmt.Errorf("starting the device flow: %w", deviceError(err))
	}
	fmt.Fprintf(l.stderr, "gatehouse login: to log in to %s, open this page in a browser on any device:\n\n  %s\n\nand enter the code\n\n  %s\n\n",
		l.flags.issuer, da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(l.stderr, "or open this link, which carries the code:\n\n  %s\n\n", da.VerificationURIComplete)
	}
	fmt.Fprintf(l.stderr, "gatehouse login: waiting for the approval (until %s)...\n", da.Expiry.Local().Format("15:04:05"))
	tok, err := l.oauth.DeviceAccessToken(ctx, da)
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return "", fmt.Errorf("no approval within %s", l.flags.timeout)
	case errors.Is(err, context.DeadlineExceeded):
		// DeviceAccessToken stops at the code's expiry by itself.
		return "", errors.New("the code expired before it was approved: run the command again for a new one")
	default:
		return "", deviceError(err)
	}
	raw, err := l.keep(tok, "")
	if err != nil {
		return "", err
	}
	if _, err := l.verify(raw, ""); err != nil {
		return "", err
	}
	fmt.Fprintln(l.stderr, "gatehouse login: logged in")
	return raw, nil
}

// deviceError says what a refusal of the device flow means for the person.
func deviceError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err
	}
	switch re.ErrorCode {
	case "access_denied":
		return fmt.Errorf("the login was denied in the browser (access_denied)")
	case "expired_token":
		return fmt.Errorf("the code expired before it was approved (expired_token): run the command again for a new one")
	case "unauthorized_client":
		return fmt.Errorf("the client may not use the device flow: its OAuthClient needs the grant type urn:ietf:params:oauth:grant-type:device_code (%s)", re.ErrorDescription)
	}
	return err
}
