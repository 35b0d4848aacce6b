package io.arrakis.view;

import io.arrakis.cli.Main;
import io.arrakis.composer.Head;
import io.arrakis.composer.PathPatching;
import io.arrakis.json.Json;
import io.arrakis.model.Fixtures;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.interactions.Actions;
import org.openqa.selenium.logging.LogEntry;
import org.openqa.selenium.logging.LogType;
import org.openqa.selenium.logging.LoggingPreferences;
import org.openqa.selenium.support.ui.Select;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.logging.Level;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The page of {@code scripts/arrakis view} in a real browser, headless Chromium driven by Selenium: it loads with no
 * console errors and no network, its numbers equal the JSON of {@code forward}, {@code composition} and
 * {@code heads} for the same inputs (and {@link PathPatching}'s), choosing another head redraws the pattern, hovering a
 * cell shows its weight, and its screenshot is not blank. Skipped, saying so, where Chromium and its driver are
 * missing ({@code scripts/test.sh} installs them where it runs as root).
 */
@Tag("browser")
class AttentionViewBrowserTest {
    private static final Path CHROMIUM = Path.of(System.getProperty("arrakis.chromium", "/usr/bin/chromium"));
    private static final Path CHROMEDRIVER = Path.of(System.getProperty("arrakis.chromedriver", "/usr/bin/chromedriver"));
    private static final Path MODEL = Fixtures.huggingFace("gpt2");
    private static final String CLEAN = "1,5,9,3,7,1,5,9,3,7,2,6";
    private static final String CORRUPTED = "2,5,9,3,7,2,5,9,3,8,2,9";
    private static final int N = 12;

    @TempDir
    static Path dir;
    private static WebDriver browser;
    private static Path page;
    private static Map<?, ?> forward;
    private static Map<String, Map<?, ?>> composition = new java.util.HashMap<>();
    private static Map<?, ?> heads;

    @BeforeAll
    static void openThePage() throws Exception {
        assumeTrue(Files.isExecutable(CHROMIUM) && Files.isExecutable(CHROMEDRIVER), "skipped: no headless Chromium ("
                + CHROMIUM + ", " + CHROMEDRIVER + "); install Debian's chromium and chromium-driver, as scripts/test.sh"
                + " does where it runs as root");
        page = dir.resolve("view.html");
        cli("view", "--model", MODEL.toString(), "--input-ids", CLEAN, "--corrupted-input-ids", CORRUPTED,
                "--receivers", "1.0,1.2", "--routes", "Q,V", "--out", page.toString());
        forward = (Map<?, ?>) Json.parse(cli("forward", "--model", MODEL.toString(), "--input-ids", CLEAN, "--hooks",
                "blocks.0.attn.hook_pattern,blocks.1.attn.hook_pattern", "--json"));
        for (String mode : List.of("Q", "K", "V")) {
            composition.put(mode, (Map<?, ?>) Json.parse(cli("composition", "--model", MODEL.toString(), "--mode", mode, "--json")));
        }
        heads = (Map<?, ?>) Json.parse(cli("heads", "--model", MODEL.toString(), "--json"));

        ChromeOptions options = new ChromeOptions();
        options.setBinary(CHROMIUM.toFile());
        options.addArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,2400");
        LoggingPreferences logs = new LoggingPreferences();
        logs.enable(LogType.BROWSER, Level.ALL);
        options.setCapability("goog:loggingPrefs", logs);
        ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(CHROMEDRIVER.toFile())
                .usingAnyFreePort().build();
        browser = new ChromeDriver(service, options);
        browser.get(page.toUri().toString());
    }

    @AfterAll
    static void closeTheBrowser() {
        if (browser != null) {
            browser.quit();
        }
    }

    /** Runs a command of scripts/arrakis in this JVM; returns what it printed. */
    private static String cli(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(0, status, () -> String.join(" ", args) + " failed: " + err.toString(StandardCharsets.UTF_8));
        return out.toString(StandardCharsets.UTF_8);
    }

    private static Object js(String script, Object... args) {
        return ((JavascriptExecutor) browser).executeScript(script, args);
    }

    private static double number(Object o) {
        return ((Number) o).doubleValue();
    }

    @Test
    void theTemplateLoadsWithNoConsoleErrorsAndNothingFromTheNetwork() {
        assertTrue(browser.getTitle().contains("arrakis-jvm view"), browser.getTitle());
        List<LogEntry> severe = browser.manage().logs().get(LogType.BROWSER).getAll().stream()
                .filter(e -> e.getLevel().intValue() >= Level.WARNING.intValue()).toList();
        assertEquals(List.of(), severe.stream().map(LogEntry::getMessage).toList(), "console errors and warnings");
        assertEquals(0L, js("return performance.getEntriesByType('resource').length"), "resources fetched");
        assertEquals(1L, js("return document.querySelectorAll('script[src], link[href], img[src]').length + 1"));
    }

    @Test
    void hoveringAPatternCellShowsTheWeightForwardReturns() {
        for (int[] at : new int[][] {{0, 0, 3, 1}, {0, 2, 11, 6}, {1, 3, 7, 7}, {1, 1, 5, 0}}) {
            int layer = at[0], head = at[1], query = at[2], key = at[3];
            new Select(browser.findElement(By.id("pattern-layer"))).selectByValue(String.valueOf(layer));
            new Select(browser.findElement(By.id("pattern-head"))).selectByValue(String.valueOf(head));
            WebElement canvas = browser.findElement(By.id("pattern-canvas"));
            double expected = forwardPattern(layer, head, query, key);
            String shown = hover(canvas, query, key);
            // each token isolated (U+2068 ... U+2069), so that one holding a direction override cannot reorder the rest
            assertTrue(shown.contains("query \u2068\"#" + CLEAN.split(",")[query] + "\"\u2069 (" + query + ")"), shown);
            assertTrue(shown.contains("key \u2068\"#" + CLEAN.split(",")[key] + "\"\u2069 (" + key + ")"), shown);
            assertEquals(expected, Double.parseDouble(shown.substring(shown.lastIndexOf(':') + 1).trim()), 5e-5, shown);
            assertEquals(expected, Double.parseDouble(browser.findElement(By.id("tooltip")).getDomAttribute("data-value")),
                    0.0, "the tooltip's exact value");
        }
    }

    /**
     * The pointer on the first and on the last pixel of a cell shows that cell. Was: the canvas's border was counted
     * as part of the drawing, so the last pixel column and row of every cell showed the next cell's weight.
     */
    @Test
    void everyPixelOfACellShowsThatCell() {
        new Select(browser.findElement(By.id("pattern-layer"))).selectByValue("1");
        new Select(browser.findElement(By.id("pattern-head"))).selectByValue("2");
        WebElement canvas = browser.findElement(By.id("pattern-canvas"));
        double cell = Double.parseDouble(canvas.getDomAttribute("data-cell"));
        double left = Double.parseDouble(canvas.getDomAttribute("data-origin-x"));
        double top = Double.parseDouble(canvas.getDomAttribute("data-origin-y"));
        for (int[] at : new int[][] {{3, 1}, {11, 6}, {7, 7}, {5, 0}}) {
            int query = at[0], key = at[1];
            for (double inside : new double[] {0.5, cell - 0.5}) {
                // a pointer event at this pixel of the drawing, inside the canvas's border
                js("const c = arguments[0], r = c.getBoundingClientRect();"
                        + "c.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + c.clientLeft + arguments[1],"
                        + " clientY: r.top + c.clientTop + arguments[2], bubbles: true}));",
                        canvas, left + key * cell + inside, top + query * cell + inside);
                assertEquals(forwardPattern(1, 2, query, key),
                        Double.parseDouble(browser.findElement(By.id("tooltip")).getDomAttribute("data-value")), 0.0,
                        "query " + query + " key " + key + " at " + inside + " px into the cell");
            }
        }
    }

    /** Moves the mouse over cell (row, col) of a heatmap canvas; returns the tooltip's text. */
    private static String hover(WebElement canvas, int row, int col) {
        double cell = Double.parseDouble(canvas.getDomAttribute("data-cell"));
        double x = Double.parseDouble(canvas.getDomAttribute("data-origin-x")) + (col + 0.5) * cell;
        double y = Double.parseDouble(canvas.getDomAttribute("data-origin-y")) + (row + 0.5) * cell;
        int width = canvas.getRect().getWidth();
        int height = canvas.getRect().getHeight();
        new Actions(browser).moveToElement(canvas, (int) Math.round(x - width / 2.0), (int) Math.round(y - height / 2.0))
                .perform();
        WebElement tooltip = browser.findElement(By.id("tooltip"));
        assertTrue(tooltip.isDisplayed(), "the tooltip shows");
        return tooltip.getText();
    }

    private static double forwardPattern(int layer, int head, int query, int key) {
        Map<?, ?> entry = (Map<?, ?>) forward.get("blocks." + layer + ".attn.hook_pattern");
        assertEquals(List.of(1L, 4L, (long) N, (long) N), entry.get("shape"));
        return number(((List<?>) entry.get("data")).get((head * N + query) * N + key));
    }

    @Test
    void choosingAnotherHeadRedrawsThePattern() {
        new Select(browser.findElement(By.id("pattern-layer"))).selectByValue("1");
        Select head = new Select(browser.findElement(By.id("pattern-head")));
        head.selectByValue("0");
        String first = (String) js("return document.getElementById('pattern-canvas').toDataURL()");
        head.selectByValue("1");
        String second = (String) js("return document.getElementById('pattern-canvas').toDataURL()");
        assertNotEquals(first, second, "another head draws another pattern");
        head.selectByValue("0");
        assertEquals(first, js("return document.getElementById('pattern-canvas').toDataURL()"), "and back again");
    }

    @Test
    void theRankedPairsAreTheStrongestScoresCompositionReturns() {
        for (String mode : List.of("Q", "K", "V")) {
            new Select(browser.findElement(By.id("composition-mode"))).selectByValue(mode);
            List<?> scores = (List<?>) composition.get(mode).get("scores");
            List<Double> valid = new ArrayList<>();
            for (int l1 = 0; l1 < 2; l1++) {
                for (int h1 = 0; h1 < 4; h1++) {
                    for (int h2 = 0; h2 < 4; h2++) {
                        valid.add(score(scores, l1, h1, 1, h2));
                    }
                }
            }
            valid.sort((a, b) -> Double.compare(b, a));
            List<WebElement> rows = browser.findElements(By.cssSelector("#top-pairs tr.pair"));
            assertEquals(Math.min(15, valid.size()), rows.size());
            for (int r = 0; r < rows.size(); r++) {
                List<WebElement> cells = rows.get(r).findElements(By.tagName("td"));
                Head sender = head(cells.get(1).getText());
                Head receiver = head(cells.get(2).getText());
                double json = score(scores, sender.layer(), sender.index(), receiver.layer(), receiver.index());
                assertEquals(json, Double.parseDouble(cells.get(3).getText()), 5e-5, mode + " row " + r);
                assertEquals(json, Double.parseDouble(cells.get(3).getDomAttribute("data-value")), 0.0);
                assertEquals(valid.get(r), json, 0.0, mode + ": rank " + (r + 1) + " is the " + (r + 1) + "th strongest");
            }
        }
    }

    /**
     * A page of Qwen3.5's fixture, three linear-attention layers and one softmax layer: the linear layers are named so
     * in the layer list and show, on hover, that they have no pattern; the softmax layer's weights are forward's; no
     * pair is ranked, and a pair with a linear layer's head says it has no score.
     */
    @Test
    void aLinearAttentionLayerShowsThatItHasNoPattern() {
        Path hybrid = dir.resolve("hybrid.html");
        Path model = Fixtures.huggingFace("qwen3-5");
        String ids = "1,5,9,3,7,2";
        cli("view", "--model", model.toString(), "--input-ids", ids, "--out", hybrid.toString());
        String name = "blocks.3.attn.hook_pattern";
        Map<?, ?> pattern = (Map<?, ?>) ((Map<?, ?>) Json.parse(cli("forward", "--model", model.toString(),
                "--input-ids", ids, "--hooks", name, "--json"))).get(name);
        try {
            browser.get(hybrid.toUri().toString());
            Select layer = new Select(browser.findElement(By.id("pattern-layer")));
            assertEquals(List.of("0 (linear attention)", "1 (linear attention)", "2 (linear attention)", "3"),
                    layer.getOptions().stream().map(WebElement::getText).toList());
            WebElement canvas = browser.findElement(By.id("pattern-canvas"));
            layer.selectByValue("1");
            assertTrue(hover(canvas, 4, 2).contains("layer 1 mixes tokens by linear attention"), "no pattern");
            layer.selectByValue("3");
            new Select(browser.findElement(By.id("pattern-head"))).selectByValue("2");
            String shown = hover(canvas, 4, 2);
            double expected = number(((List<?>) pattern.get("data")).get(2 * 36 + 4 * 6 + 2));
            assertEquals(expected, Double.parseDouble(shown.substring(shown.lastIndexOf(':') + 1).trim()), 5e-5, shown);
            // no pair of heads to rank: the one attention layer's heads receive only from linear layers
            assertEquals(0, browser.findElements(By.cssSelector("#top-pairs tr.pair")).size());
            String pair = hover(browser.findElement(By.id("composition-canvas")), 0, 12);
            assertTrue(pair.contains("L0H0") && pair.contains("L3H0")
                    && pair.contains("layer 0 has no attention heads"), pair);
            List<LogEntry> severe = browser.manage().logs().get(LogType.BROWSER).getAll().stream()
                    .filter(e -> e.getLevel().intValue() >= Level.WARNING.intValue()).toList();
            assertEquals(List.of(), severe.stream().map(LogEntry::getMessage).toList(), "console errors and warnings");
        } finally {
            browser.get(page.toUri().toString());
        }
    }

    @Test
    void aScoreThatIsNoNumberRanksLast() {
        new Select(browser.findElement(By.id("composition-mode"))).selectByValue("Q");
        // the page's data as a report with a NaN score and a negative one (scores minus a baseline can be) would give
        String shown = "(data.composition.modes.Q.baseline_corrected || data.composition.modes.Q.scores)";
        js("window.savedQ = JSON.stringify(data.composition.modes.Q);"
                + shown + "[0][1][1][2] = null;" + shown + "[0][2][1][3] = -1; drawComposition();");
        try {
            List<WebElement> rows = browser.findElements(By.cssSelector("#top-pairs tr.pair"));
            assertEquals(15, rows.size(), "16 pairs, 15 shown");
            List<String> pairs = rows.stream().map(r -> r.findElements(By.tagName("td")))
                    .map(c -> c.get(1).getText() + ">" + c.get(2).getText()).toList();
            assertEquals("L0H2>L1H3", pairs.get(14), "the negative score is the last number: " + pairs);
            assertFalse(pairs.contains("L0H1>L1H2"), "the missing score ranks after every number: " + pairs);
        } finally {
            js("data.composition.modes.Q = JSON.parse(window.savedQ); drawComposition();");
        }
    }

    private static double score(List<?> scores, int l1, int h1, int l2, int h2) {
        return number(((List<?>) ((List<?>) ((List<?>) scores.get(l1)).get(h1)).get(l2)).get(h2));
    }

    private static Head head(String label) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("L(\\d+)H(\\d+)").matcher(label);
        assertTrue(m.matches(), label);
        return Head.of(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)));
    }

    @Test
    void theHeadTablesShowWhatHeadsReturns() {
        for (String kind : List.of("previous_token", "induction", "duplicate_token")) {
            List<?> expected = (List<?>) heads.get(kind);
            List<WebElement> rows = browser.findElements(By.cssSelector("#heads-" + kind + " tr"));
            assertEquals(3, rows.size(), "a header and two layers");
            for (int l = 0; l < 2; l++) {
                List<WebElement> cells = rows.get(l + 1).findElements(By.tagName("td"));
                for (int h = 0; h < 4; h++) {
                    double json = number(((List<?>) expected.get(l)).get(h));
                    assertEquals(json, Double.parseDouble(cells.get(h).getText()), 5e-5, kind + " L" + l + "H" + h);
                }
            }
        }
    }

    @Test
    void thePatchingTableShowsPathPatchingsEffects() {
        Select receiver = new Select(browser.findElement(By.id("patching-receiver")));
        assertEquals(List.of("L1H0 (Q)", "L1H0 (V)", "L1H2 (Q)", "L1H2 (V)"),
                receiver.getOptions().stream().map(WebElement::getText).toList());
        Map<?, ?> data = (Map<?, ?>) Json.parse((String) js("return document.getElementById('arrakis-data').textContent"));
        Map<?, ?> patching = (Map<?, ?>) data.get("patching");
        long answer = (Long) patching.get("answer");
        long wrong = (Long) patching.get("wrong");
        receiver.selectByIndex(3);
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(MODEL)) {
            Tensor clean = ids(CLEAN);
            Tensor corrupted = ids(CORRUPTED);
            assertEquals(answer, top(model, clean), "the answer is the clean input's top token");
            assertEquals(wrong, top(model, corrupted), "the wrong token is the corrupted input's");
            float[] expected = PathPatching.patchAllSenders(model, clean, corrupted, Head.of(1, 2), PathPatching.Route.V,
                    PathPatching.Metric.logitDiff(answer, wrong), PathPatching.Mode.PATH).toFloatArray();
            List<WebElement> rows = browser.findElements(By.cssSelector("#patching-table tr"));
            for (int h = 0; h < 4; h++) {
                String shown = rows.get(1).findElements(By.tagName("td")).get(h).getText();
                assertEquals(expected[h], Double.parseDouble(shown), 5e-5, "sender L0H" + h);
                assertEquals("\u00b7", rows.get(2).findElements(By.tagName("td")).get(h).getText(), "layer 1 sends nothing");
            }
        }
    }

    private static Tensor ids(String csv) {
        long[] values = java.util.Arrays.stream(csv.split(",")).mapToLong(Long::parseLong).toArray();
        return Tensor.of(values, 1, values.length);
    }

    private static long top(HookedAutoModel model, Tensor ids) {
        Tensor logits = model.runWithHooks(ids);
        return logits.select(1, N - 1).select(0, 0).argmax(-1, false).itemLong();
    }

    @Test
    void theScreenshotIsNotBlank() throws IOException {
        byte[] png = ((org.openqa.selenium.TakesScreenshot) browser).getScreenshotAs(OutputType.BYTES);
        BufferedImage image = ImageIO.read(new ByteArrayInputStream(png));
        Set<Integer> colours = new HashSet<>();
        long notWhite = 0;
        for (int y = 0; y < image.getHeight(); y += 2) {
            for (int x = 0; x < image.getWidth(); x += 2) {
                int rgb = image.getRGB(x, y) & 0xffffff;
                colours.add(rgb);
                if (rgb != 0xffffff) {
                    notWhite++;
                }
            }
        }
        long sampled = (long) ((image.getHeight() + 1) / 2) * ((image.getWidth() + 1) / 2);
        assertTrue(colours.size() > 50, colours.size() + " colours");
        assertTrue(notWhite > sampled / 20, notWhite + " of " + sampled + " sampled pixels are not white");
        Files.write(dir.resolve("screenshot.png"), png);
    }
}
