package agent

import (
	"errors"
	"fmt"
	"testing"

	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pull"
)

func TestErrorKind(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("login: %w", engine.ErrUnauthorized), ErrorCredentials},
		{fmt.Errorf("pull: %w", engine.ErrNotFound), ErrorNotFound},
		{fmt.Errorf("x: %w", pull.ErrPlatform), ErrorPlatform},
		{fmt.Errorf("ping: %w", engine.ErrUnreachable), ErrorEngine},
		{errors.New("boom"), ""},
	} {
		if got := errorKind(tt.err); got != tt.want {
			t.Errorf("errorKind(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
