package lab

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestModuleIndexReplace(t *testing.T) {
	pkg := map[string]string{
		"dlm":              "/pkg/kernel/fs/dlm/dlm.ko",
		"gfs2":             "/pkg/kernel/fs/gfs2/gfs2.ko",
		"ocfs2_stack_user": "/pkg/kernel/fs/ocfs2/ocfs2_stack_user.ko",
		"configfs":         "/pkg/kernel/fs/configfs/configfs.ko",
	}
	tests := []struct {
		name    string
		files   []string // .ko files in the replacement folder; nil: no folder
		want    map[string]string
		wantErr error
		anyErr  bool
	}{
		{name: "no folder", want: pkg},
		{
			name:  "dlm and gfs2",
			files: []string{"dlm.ko", "gfs2.ko", "series"},
			want: map[string]string{
				"dlm":              "REPL/dlm.ko",
				"gfs2":             "REPL/gfs2.ko",
				"ocfs2_stack_user": "/pkg/kernel/fs/ocfs2/ocfs2_stack_user.ko",
				"configfs":         "/pkg/kernel/fs/configfs/configfs.ko",
			},
		},
		{
			name:  "dashes are underscores",
			files: []string{"ocfs2-stack-user.ko"},
			want: map[string]string{
				"dlm":              "/pkg/kernel/fs/dlm/dlm.ko",
				"gfs2":             "/pkg/kernel/fs/gfs2/gfs2.ko",
				"ocfs2_stack_user": "REPL/ocfs2-stack-user.ko",
				"configfs":         "/pkg/kernel/fs/configfs/configfs.ko",
			},
		},
		{name: "unknown module", files: []string{"dlm.ko", "notinkernel.ko"}, wantErr: ErrUnknownModule},
		{name: "empty folder", files: []string{}, anyErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			idx := &moduleIndex{paths: map[string]string{}, builtin: map[string]bool{}}
			for k, v := range pkg {
				idx.paths[k] = v
			}
			dir := ""
			if tc.files != nil {
				dir = t.TempDir()
				for _, f := range tc.files {
					if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			err := idx.replace(dir)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("replace: got %v, want %v", err, tc.wantErr)
				}
				return
			case tc.anyErr:
				if err == nil {
					t.Fatal("replace: no error")
				}
				return
			case err != nil:
				t.Fatalf("replace: %v", err)
			}
			got := map[string]string{}
			for k, v := range idx.paths {
				if dir != "" && filepath.Dir(v) == dir {
					v = "REPL/" + filepath.Base(v)
				}
				got[k] = v
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("paths (-want +got):\n%s", d)
			}
		})
	}
}
