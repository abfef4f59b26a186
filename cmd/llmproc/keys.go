package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/llmproc/llmproc/filter/identity"
)

// keys runs `llmproc keys create|list|revoke`; the logic is in filter/identity.
func keys(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("llmproc keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ks keyStoreFlags
	ks.register(fs)
	now := time.Now()
	switch sub {
	case "create":
		tenant := fs.String("tenant", "", "the tenant the key stands for (required)")
		team := fs.String("team", "", "optional team")
		user := fs.String("user", "", "optional user")
		models := fs.String("models", "", "comma-separated model globs the key may use, within its tenant's (default: its tenant's)")
		expires := fs.Duration("expires", 0, "lifetime, e.g. 720h (default: no expiry)")
		var lf limitFlags
		lf.register(fs)
		if err := fs.Parse(args); err != nil {
			return flagError(fs, stderr)
		}
		k := identity.Key{Tenant: *tenant, Team: *team, User: *user}
		if *models != "" {
			k.Models = strings.Split(*models, ",")
		}
		lf.apply(&k)
		store, err := ks.open()
		if err != nil {
			return flagUsage(fs, stderr, err)
		}
		defer store.Close()
		if *expires > 0 {
			t := now.Add(*expires).UTC()
			k.Expires = &t
		}
		key, created, err := store.Create(k, now)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", key)
		fmt.Fprintf(stderr, "key %s for tenant %s written to %s; the key above is shown only now\n", created.ID, created.Tenant, store.Where())
		return nil
	case "list":
		if err := fs.Parse(args); err != nil {
			return flagError(fs, stderr)
		}
		store, err := ks.open()
		if err != nil {
			return flagUsage(fs, stderr, err)
		}
		defer store.Close()
		list, err := store.List()
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTENANT\tTEAM\tUSER\tMODELS\tLIMITS\tCREATED\tEXPIRES\tSTATUS")
		for _, k := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Tenant, dash(k.Team), dash(k.User), dash(strings.Join(k.Models, ",")),
				dash(limitsSummary(k)), k.Created.Format(time.RFC3339), timeOrDash(k.Expires), status(k, now))
		}
		return tw.Flush()
	case "update":
		models := fs.String("models", "", "comma-separated model globs the key may use, within its tenant's; '' removes the list")
		var lf limitFlags
		lf.register(fs)
		if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
			return flagError(fs, stderr)
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		store, err := ks.open()
		if err != nil {
			return flagUsage(fs, stderr, err)
		}
		defer store.Close()
		updated, err := store.Update(fs.Arg(0), func(k *identity.Key) {
			if set["models"] {
				k.Models = splitList(*models)
			}
			lf.update(k, set)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "key %s updated in %s: %s\n", updated.ID, store.Where(), dash(limitsSummary(updated)))
		return nil
	case "revoke":
		if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
			return flagError(fs, stderr)
		}
		store, err := ks.open()
		if err != nil {
			return flagUsage(fs, stderr, err)
		}
		defer store.Close()
		return store.Revoke(fs.Arg(0), now)
	}
	fmt.Fprintf(stderr, "llmproc keys: unknown subcommand %q\n\n%s", sub, usage)
	return errUsage
}

func flagError(fs *flag.FlagSet, stderr io.Writer) error {
	fmt.Fprintf(stderr, "usage: %s (-file FILE | -redis HOST:PORT | -config FILE) ...\n", fs.Name())
	fs.PrintDefaults()
	return errUsage
}

func flagUsage(fs *flag.FlagSet, stderr io.Writer, err error) error {
	fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
	return flagError(fs, stderr)
}

func status(k identity.Key, now time.Time) string {
	switch st := k.State(now); st {
	case identity.ResultOK:
		return "active"
	case identity.ResultRevoked:
		return "revoked " + k.Revoked.Format(time.RFC3339)
	default:
		return st
	}
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
