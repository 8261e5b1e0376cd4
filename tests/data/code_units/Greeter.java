package demo;

import java.util.List;

/**
 * Greets people by name.
 */
public class Greeter {
    private final String greeting;

    public Greeter(String greeting) {
        this.greeting = greeting;
    }

    /**
     * Builds the greeting for one person.
     * @param name who to greet
     */
    @Deprecated
    public String greet(String name) {
        return greeting + ", " + name;
    }
}

/** Something that says hello. */
interface Hello {
    String hello();
}
