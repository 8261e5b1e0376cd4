// Package cache keeps recently used values.
package cache

import "sync"

// Store is anything that can hold values by key.
type Store interface {
	Get(key string) (string, bool)
}

// LRU is a least-recently-used cache.
// It is safe for concurrent use.
type LRU struct {
	mu    sync.Mutex
	items map[string]string
}

// Get returns the value for key and whether it was present.
func (c *LRU) Get(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.items[key]
	return v, ok
}

// NewLRU makes an empty cache.
func NewLRU() *LRU {
	return &LRU{items: map[string]string{}}
}
