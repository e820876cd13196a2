package devenv

import (
	"errors"
	"os"
	"path/filepath"
)

// Logs are the log files of one run, one per process, appended to across
// runs.
type Logs struct {
	Dir   string
	files map[string]*os.File
}

// OpenLogs opens dir/NAME.log for each name.
func OpenLogs(dir string, names ...string) (*Logs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	l := &Logs{Dir: dir, files: map[string]*os.File{}}
	for _, name := range names {
		f, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, errors.Join(err, l.Close())
		}
		l.files[name] = f
	}
	return l, nil
}

// File is the log of the named process.
func (l *Logs) File(name string) *os.File { return l.files[name] }

// Close closes every log.
func (l *Logs) Close() error {
	var errs []error
	for _, f := range l.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
