package acs

// Conns is the number of connections being served, old ones still
// cleaning up included: a test waits for an old connection's cleanup.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sl := range s.slots {
		n += sl.refs
	}
	return n
}

// HubRevision is the revision the server's task watch has dispatched every
// change up to.
func (s *Server) HubRevision() int64 { return s.hub.revision() }
