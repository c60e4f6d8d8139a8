package main

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

var (
	eventNames = [...]string{
		"page_view", "signup", "login", "purchase", "add_to_cart",
		"search", "click", "share", "logout", "subscribe",
	}
	channels   = [...]string{"web", "mobile", "api", "email", "push"}
	userAgents = [...]string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0 Desktop",
	}
)

const (
	users     = 100_000
	campaigns = 40
	hexDigits = "0123456789abcdef"
)

// eventBody is one event of about 400 bytes, valid for POST /events: 10 event names, 5 channels,
// 100k users, timestamp = now (unix seconds), a campaign, 2 tags and 3 metadata keys. The random
// session id makes every event distinct, so none is a resend of another.
func eventBody(buf []byte, now int64) []byte {
	b := append(buf[:0], `{"event_name":"`...)
	b = append(b, eventNames[rand.IntN(len(eventNames))]...)
	b = append(b, `","channel":"`...)
	b = append(b, channels[rand.IntN(len(channels))]...)
	b = append(b, `","user_id":"user-`...)
	b = strconv.AppendInt(b, int64(rand.IntN(users)), 10)
	b = append(b, `","timestamp":`...)
	b = strconv.AppendInt(b, now, 10)
	b = append(b, `,"campaign_id":"cmp-2026-q4-`...)
	b = strconv.AppendInt(b, int64(rand.IntN(campaigns)), 10)
	b = append(b, `","tags":["loadtest","variant-`...)
	b = append(b, "abcd"[rand.IntN(4)])
	b = append(b, `"],"metadata":{"page":"/catalog/category-`...)
	b = strconv.AppendInt(b, int64(rand.IntN(50)), 10)
	b = append(b, `/item-`...)
	b = strconv.AppendInt(b, int64(rand.IntN(100_000)), 10)
	b = append(b, `?ref=newsletter&utm_source=email&utm_medium=cta","session_id":"`...)
	for range 2 {
		word := rand.Uint64()
		for range 16 {
			b = append(b, hexDigits[word&15])
			word >>= 4
		}
	}
	b = append(b, `","user_agent":"`...)
	b = append(b, userAgents[rand.IntN(len(userAgents))]...)
	b = append(b, `"}}`...)
	return b
}

// eventTargeter gives every request a fresh event. vegeta calls it from all workers at once;
// math/rand/v2's top-level functions are safe for that.
func eventTargeter(url string) vegeta.Targeter {
	header := http.Header{"Content-Type": []string{"application/json"}}
	return func(t *vegeta.Target) error {
		t.Method = http.MethodPost
		t.URL = url
		t.Header = header
		t.Body = eventBody(make([]byte, 0, 512), time.Now().Unix())
		return nil
	}
}
