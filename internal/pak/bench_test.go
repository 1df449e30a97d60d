package pak_test

import (
	"fmt"
	"testing"

	"github.com/prepull/prepull/internal/pak/paktest"
)

// BenchmarkOpenLargePak opens paks whose content/ is 10 MiB, 100 MiB and
// 1 GiB. Each pak is written once per size; reading must not depend on it.
func BenchmarkOpenLargePak(b *testing.B) {
	for _, size := range []int64{10 << 20, 100 << 20, 1 << 30} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			path := paktest.Pak{Registry: paktest.Registry, ContentBytes: size}.WriteFile(b, b.TempDir())
			b.ReportAllocs()
			for b.Loop() {
				img, err := open(path)
				if err != nil {
					b.Fatal(err)
				}
				if img.Digest != paktest.Digest {
					b.Fatalf("OpenFile = %+v", img)
				}
			}
		})
	}
}
