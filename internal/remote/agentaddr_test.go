package remote

import "testing"

// TestAgentAddress checks the choice of the ssh-agent's transport on each
// system: $SSH_AUTH_SOCK wins everywhere; Windows falls back to its
// OpenSSH agent's named pipe, other systems to no agent.
func TestAgentAddress(t *testing.T) {
	for _, tt := range []struct{ goos, sock, want string }{
		{"windows", "", WindowsAgentPipe},
		{"windows", `\\.\pipe\my-agent`, `\\.\pipe\my-agent`},
		{"windows", `C:\Users\a\agent.sock`, `C:\Users\a\agent.sock`},
		{"darwin", "/private/tmp/com.apple.launchd.x/Listeners", "/private/tmp/com.apple.launchd.x/Listeners"},
		{"darwin", "", ""},
		{"linux", "", ""},
		{"linux", "/run/user/0/agent", "/run/user/0/agent"},
	} {
		if got := AgentAddress(tt.goos, tt.sock); got != tt.want {
			t.Errorf("AgentAddress(%q, %q) = %q, want %q", tt.goos, tt.sock, got, tt.want)
		}
	}
}
