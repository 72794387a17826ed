/*
 * ffplay-wake: lets ffplay show a decoded frame when it is decoded instead of at its next poll.
 *
 * ffplay's main thread polls for a frame to show: it sleeps in av_usleep() for up to 10 ms
 * (REFRESH_RATE in fftools/ffplay.c), looks at its picture queue, and sleeps again. A frame the
 * decoder thread queues just after a look waits up to 10 ms, 5 ms on average, before it is drawn:
 * most of what ffplay's window lost against GStreamer's (which draws from the decoding thread).
 *
 * Loaded into ffplay with LD_PRELOAD by `lanstream watch` (window-sink.ts ffplayEnv), on Linux only.
 * It changes two calls, nothing else:
 *   - SDL_CondSignal: ffplay's threads signal it when they queue a packet or a decoded frame. The
 *     real one runs, then, from any thread but the main one, a wake-up is posted.
 *   - av_usleep on the main thread: sleeps as asked, but returns as soon as a wake-up was posted
 *     since it last returned. Every other thread sleeps as before.
 * So the main thread never sleeps longer than ffplay asked, only shorter; a wake-up for a packet
 * (no frame yet) costs one more look at the queue. A wake-up posted while the main thread was busy
 * is kept, so a frame queued between its look and its sleep is not missed.
 *
 * LANSTREAM_FFPLAY_WAKE_STATS=<file>: at exit, write "wakes <n> timeouts <n>" there (tests, diagnosis).
 * Build: cc -shared -fPIC -O2 -o ffplay-wake.so ffplay-wake.c -ldl -lpthread (native/build.mjs).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t posted;
static unsigned long posts, seen, wakes, timeouts;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int (*real_cond_signal)(void *);
static int (*real_usleep)(unsigned);

static void report(void) {
  const char *path = getenv("LANSTREAM_FFPLAY_WAKE_STATS");
  FILE *f = path && *path ? fopen(path, "w") : NULL;
  if (!f) return;
  /* exit() may run on a thread that holds the lock (a signal handler calling exit): never wait for it. */
  int locked = pthread_mutex_trylock(&lock) == 0;
  fprintf(f, "wakes %lu timeouts %lu\n", wakes, timeouts);
  if (locked) pthread_mutex_unlock(&lock);
  fclose(f);
}

static void init(void) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&posted, &attr);
  pthread_condattr_destroy(&attr);
  real_cond_signal = (int (*)(void *))dlsym(RTLD_NEXT, "SDL_CondSignal");
  real_usleep = (int (*)(unsigned))dlsym(RTLD_NEXT, "av_usleep");
  atexit(report);
}

static int on_main_thread(void) { return syscall(SYS_gettid) == getpid(); }

int SDL_CondSignal(void *cond) {
  pthread_once(&once, init);
  if (!real_cond_signal) return -1;
  int ret = real_cond_signal(cond);
  if (!on_main_thread()) {
    pthread_mutex_lock(&lock);
    posts++;
    pthread_cond_signal(&posted);
    pthread_mutex_unlock(&lock);
  }
  return ret;
}

int av_usleep(unsigned usec) {
  pthread_once(&once, init);
  if (!on_main_thread() && real_usleep) return real_usleep(usec);
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += usec / 1000000;
  until.tv_nsec += (long)(usec % 1000000) * 1000;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&lock);
  int timed_out = 0;
  /* Any error but a spurious wake-up (0) ends the wait: never sleep longer than asked. */
  while (posts == seen && !timed_out) timed_out = pthread_cond_timedwait(&posted, &lock, &until) != 0;
  if (posts != seen) wakes++;
  else timeouts++;
  seen = posts;
  pthread_mutex_unlock(&lock);
  return 0;
}
