//! Background threads: work that must not take CPU time from serving
//! (an edge's index compactions, the writer's snapshots).

/// Runs `work` on a new thread named `name`, at nice 10 (Linux
/// priorities are per thread): a tenth of a normal thread's share when
/// both want a core, all of it when the core is otherwise idle. A priority
/// cannot be raised back without privileges, hence a thread of its own
/// rather than a pooled one. If the priority cannot be lowered, the work
/// runs at the inherited one.
pub fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            if let Err(error) = lower_this_threads_priority() {
                tracing::debug!(%error, "cannot lower a background thread's priority");
            }
            work()
        })
}

fn lower_this_threads_priority() -> Result<(), String> {
    use thread_priority::{set_current_thread_priority, ThreadPriority, ThreadPriorityValue};
    // The crate maps 0–99 onto nice 19…−20; 22 is nice 10.
    let value = ThreadPriorityValue::try_from(22u8).map_err(|error| format!("{error:?}"))?;
    set_current_thread_priority(ThreadPriority::Crossplatform(value))
        .map_err(|error| format!("{error:?}"))
}

#[cfg(test)]
mod tests {
    /// The thread's priority is lowered to nice 10, and only that thread's.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_background_thread_runs_at_nice_10() {
        fn nice_of_this_thread() -> i32 {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            // Fields after the command name (in parentheses) start at the
            // third; the nice value is the nineteenth.
            let after_name = &stat[stat.rfind(')').unwrap() + 2..];
            after_name.split(' ').nth(19 - 3).unwrap().parse().unwrap()
        }
        let before = nice_of_this_thread();
        let lowered = super::spawn("test-background", nice_of_this_thread)
            .unwrap()
            .join()
            .unwrap();
        // Already nicer than 10 (without the right to raise it back), the
        // thread keeps what it inherited.
        assert!(
            lowered == 10 || (before > 10 && lowered == before),
            "nice {lowered}, caller's {before}"
        );
        assert_eq!(nice_of_this_thread(), before, "the caller's is unchanged");
    }
}
