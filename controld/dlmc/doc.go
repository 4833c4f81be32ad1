// Package dlmc speaks the libdlmcontrol protocol: the local socket
// protocol between dlm_controld and its clients (dlm_tool, gfs_controld
// style filesystem helpers). Both sides live here: the daemon uses the
// encoders and [ListenAbstract]/[PeerCred]; dlm_tool uses [Client].
//
// # Sockets
//
// The daemon listens on two abstract AF_UNIX stream sockets, named
// "\x00dlmc_query_sock" ([QuerySocket]) and "\x00dlmc_sock"
// ([CommandSocket]); the address length covers the leading NUL and the
// name, without a trailing NUL. The query socket takes one request per
// connection and closes it after the reply. The command socket keeps
// connections open; godlm's Join and Leave extensions are sent there,
// one request per connection, and are answered with one reply.
//
// Abstract names have no owner or permissions: any local user can bind
// one before the daemon does. So a [Client] reads the serving process's
// credentials (SO_PEERCRED) on every connection and sends nothing unless
// it runs as [Client.ServerUID], root by default ([ErrUntrustedServer]).
// The daemon, in turn, reads each client's credentials to decide what it
// may ask, and bounds how many connections each user holds.
//
// # Messages
//
// Every request and every reply but one starts with a 96-byte [Header]
// in the host's byte order; its Len field counts the header plus the
// payload that follows. The exception is the reply to DUMP_STATUS: the
// reference daemon sends no header at all, only a stream of dlmc_state
// records (see [State]) ended by closing the connection, and the
// reference client reads it that way.
//
// # Encodings
//
// Fixed-size records ([Change], [Lockspace], [Node], [State]) are encoded
// with Append* functions and decoded with Parse* functions, in the
// layout of the C structs on a 64-bit Linux host:
//
//	dlmc_header    96 bytes  (HeaderSize)
//	dlmc_change    32 bytes  (ChangeSize)
//	dlmc_lockspace 140 bytes (LockspaceSize; name[65] then 3 bytes padding)
//	dlmc_node      40 bytes  (NodeSize; 4 bytes padding before fail_walltime)
//	dlmc_state     28 bytes  (StateSize; "data64" is 32 bits wide)
package dlmc
