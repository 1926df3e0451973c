package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/gin-gonic/gin"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/ok", func(c *gin.Context) { Success(c, map[string]any{"q": c.Query("q")}) })
	r.GET("/bad", func(c *gin.Context) { Fail(c, http.StatusBadRequest, ErrBadData, "no good") })
	r.GET("/plain", func(c *gin.Context) { c.String(http.StatusBadGateway, "upstream down") })
	r.GET("/auth", func(c *gin.Context) {
		if c.GetHeader("Authorization") != "Bearer tok" {
			Fail(c, http.StatusUnauthorized, ErrUnauthorized, "missing token")
			return
		}
		Success(c, "in")
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	c := Client{Base: srv.URL + "/"}

	var got map[string]string
	if err := c.Do(t.Context(), http.MethodGet, "/ok", url.Values{"q": {"a b"}}, &got); err != nil || got["q"] != "a b" {
		t.Errorf("success: %v %v", got, err)
	}
	err := c.Do(t.Context(), http.MethodGet, "/bad", nil, nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != http.StatusBadRequest || e.Type != ErrBadData || e.Message != "no good" {
		t.Errorf("error envelope: %v (%#v)", err, e)
	}
	if err := c.Do(t.Context(), http.MethodGet, "/plain", nil, nil); err == nil || errors.As(err, &e) {
		t.Errorf("a non-envelope answer: %v, want a plain error", err)
	}
	var s string
	if err := c.Do(t.Context(), http.MethodGet, "/auth", nil, &s); err == nil {
		t.Error("no token: success")
	}
	c.Token = "tok"
	if err := c.Do(t.Context(), http.MethodGet, "/auth", nil, &s); err != nil || s != "in" {
		t.Errorf("with token: %q %v", s, err)
	}
}
