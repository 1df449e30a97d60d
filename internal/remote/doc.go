// Package remote runs prepull's one-shot on Cloud Proxies over SSH, from a
// workstation: one proxy or a whole fleet, with each proxy's own prepull and
// registry credentials, so that no registry secret leaves the proxies.
//
// For one proxy and one pak it does what this OpenSSH command does:
//
//	ssh proxy prepull --json - < foo.pak
//
// with the same destinations (ssh_config aliases with HostName, User, Port,
// IdentityFile and ProxyJump), the same strict known_hosts checking (hashed
// entries, accept-new), keys from the ssh-agent and identity files, and
// OpenSSH's keepalive@openssh.com keepalives; and for many proxies at once,
// with their standard error streamed back line by line, each line prefixed
// by the host. Before the command, the remote shell reports its process
// group on standard error, so that a canceled command can be ended even
// where sshd refuses signal requests (OpenSSH does for root logins).
package remote
