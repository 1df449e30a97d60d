package remote

// WindowsAgentPipe is the named pipe of the ssh-agent service of Windows'
// own OpenSSH.
const WindowsAgentPipe = `\\.\pipe\openssh-ssh-agent`

// AgentAddress is where the ssh-agent is reached on goos, given
// $SSH_AUTH_SOCK: that, when set (a Unix socket, or on Windows a named pipe
// too); else, on Windows, the pipe of its OpenSSH agent service; else none.
// On macOS launchd sets SSH_AUTH_SOCK for every session.
func AgentAddress(goos, sock string) string {
	if sock == "" && goos == "windows" {
		return WindowsAgentPipe
	}
	return sock
}
