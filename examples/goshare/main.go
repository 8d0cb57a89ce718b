// Command goshare shows a Go program sharing a cachee region with Python
// workers: it writes values that `cachee.SharedCache(path).get(key)` reads
// in Python, reads what Python wrote, and prints the tier statistics.
//
//	go run ./examples/goshare -path /dev/shm/goshare-demo
//
// Python, in another terminal, against the same path:
//
//	from cachee import SharedCache
//	c = SharedCache("/dev/shm/goshare-demo")
//	print(c.get("from-go:0"))          # b'hello from Go 0'
//	c.set("from-python", b"hi Go")
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/cachee-dev/cachee/core/tiers"
)

func main() {
	path := flag.String("path", "/dev/shm/goshare-demo", "region path (created if missing)")
	size := flag.Uint64("size", 64<<20, "region size in bytes when creating it")
	keep := flag.Bool("keep", true, "leave the region in place for Python to read")
	flag.Parse()

	c, err := tiers.Open(tiers.Config{
		Path:       *path,
		Create:     true,
		CreateSize: *size,
		L1Bytes:    32 << 20, // this process's L1: values L0 evicts wait here
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	for i := 0; i < 3; i++ {
		k := fmt.Sprintf("from-go:%d", i)
		if err := c.Set(ctx, []byte(k), []byte(fmt.Sprintf("hello from Go %d", i)), tiers.SetOptions{}); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("set %s\n", k)
	}
	switch v, err := c.Get(ctx, []byte("from-python"), tiers.GetOptions{}); {
	case errors.Is(err, tiers.ErrNotFound):
		fmt.Println("from-python: not set yet (run the Python lines above)")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Printf("from-python: %q (served by %v)\n", v.Data, v.Tier)
	}
	// GetOrLoad: computed once per machine, whoever asks first.
	v, err := c.GetOrLoad(ctx, []byte("expensive"), func(ctx context.Context, k []byte) ([]byte, tiers.SetOptions, error) {
		return []byte("computed by Go"), tiers.SetOptions{}, nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("expensive: %q\n", v.Data)

	st, err := c.Stats()
	if err != nil {
		log.Fatal(err)
	}
	js, _ := json.MarshalIndent(st.Tiers[0], "", "  ")
	fmt.Printf("L0 tier stats (this process): %s\n", js)
	if !*keep {
		os.Remove(*path)
	}
}
