package io.arrakis.bench;

/**
 * An experiment that ran to its end but whose run could not be recorded (a result of a type that cannot be logged, a
 * full disk): the result it computed is kept here, so that the work is not lost with the record.
 */
public final class ExperimentNotLoggedException extends RuntimeException {
    private final transient Object result;

    ExperimentNotLoggedException(String name, Object result, RuntimeException cause) {
        super("experiment '" + name + "' ran, but its run could not be logged (its result is in result()): "
                + cause.getMessage(), cause);
        this.result = result;
    }

    /** What the experiment returned. */
    public Object result() {
        return result;
    }
}
