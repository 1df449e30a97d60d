// Package logging builds prepull's zap loggers: JSON lines when stderr is
// systemd's journal, readable console lines everywhere else.
package logging

import (
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/prepull/prepull/internal/display"
)

// New returns a logger writing to w. format is "json", "console" or "auto"
// (JSON when w is the journal stream systemd handed us, console otherwise).
// quiet raises the level to warnings.
func New(w *os.File, format string, quiet bool) *zap.Logger {
	level := zapcore.InfoLevel
	if quiet {
		level = zapcore.WarnLevel
	}
	if format == "auto" {
		format = "console"
		if isJournal(w) {
			format = "json"
		}
	}
	var enc zapcore.Encoder
	if format == "json" {
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(cfg)
	} else {
		cfg := zap.NewDevelopmentEncoderConfig()
		cfg.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05")
		cfg.CallerKey, cfg.StacktraceKey, cfg.NameKey = "", "", ""
		enc = zapcore.NewConsoleEncoder(cfg)
	}
	// Field values come from registries, engines and paks; the encoders
	// escape ASCII controls, display.JSONWriter the rest (bidi overrides, C1).
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(display.JSONWriter(w))), level))
}
