package formparse

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse: the form parser accepts exactly what url.ParseQuery
// followed by the strict rules (no repeats, empty dropped) accepts, with
// the same values.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"grant_type=client_credentials&scope=orders%3Aread+orders%3Awrite",
		"a=1&a=2", "a=&a=2", "a=&b=1", "%zz", "a=%zz", "a;b=1", "&&a=1&&", "=x", "a", "a=1=2", "k%20ey=v+al",
		"a=1&b=%", strings.Repeat("x=1&", 3),
		"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb", "audience=&audience=b", "resource=&resource=", "audience=x&a=1&audience=y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got, gotErr := Parse(body)
		want, err := url.ParseQuery(body)
		var wantErr *Error
		if err != nil {
			wantErr = invalid("the request body is not valid form encoding")
		} else {
			want, wantErr = Strict(want)
		}
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: error %v, url.ParseQuery and Strict: %v", body, gotErr, wantErr)
		}
		if gotErr != nil {
			if gotErr.Status != http.StatusBadRequest || strings.Contains(wantErr.Description, "encoding") != strings.Contains(gotErr.Description, "encoding") {
				t.Fatalf("%q: error %v, want like %v", body, gotErr, wantErr)
			}
			return
		}
		if !maps.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("%q: %v, want %v", body, got, want)
		}
	})
}

// A value slice of the parsed form can be appended to without changing
// another parameter's value: they share one array, each capped at its
// length.
func TestParseFormValuesSharedArray(t *testing.T) {
	body := "a=1&b=2&c=3"
	for i := range 30 { // more than the initial array holds
		body += "&p" + strconv.Itoa(i) + "=" + strconv.Itoa(i)
	}
	form, e := Parse(body)
	if e != nil {
		t.Fatal(e)
	}
	form["a"] = append(form["a"], "x")
	if form.Get("b") != "2" || form.Get("c") != "3" || len(form["a"]) != 2 || len(form) != 33 {
		t.Fatalf("after append: %v", form)
	}
	for i := range 30 {
		if form.Get("p"+strconv.Itoa(i)) != strconv.Itoa(i) {
			t.Fatalf("p%d = %q", i, form.Get("p"+strconv.Itoa(i)))
		}
	}
}
