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
