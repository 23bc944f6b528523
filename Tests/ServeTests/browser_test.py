"""nn-serve's page in a real browser: Debian's chromium, headless, driven by chromedriver through Selenium.

Starts nn-serve on torch's LeNet (Fixtures/torch/lenet_avg.onnx, converted by nnconv with --scale 1/255),
opens `/`, draws a 7 stroke by stroke on the canvas with pointer events (Selenium's ActionChains),
and after each stroke waits for the page's answer. Then it reads back, from the page itself, the
28x28 picture the page shows as what the model saw, the class it names and the bar chart, and
checks them against onnxruntime running the same ONNX file on that picture / 255 (the
preprocessing torch trained with): same class, same top-3 probabilities to the 0.1 % the bars
show. Then it clicks a test picture offered by --examples (torch's 100 digits as an IDX file made
here) and checks the page's class against onnxruntime on those pixels. It also fails on any error
in the browser's console. Saves a screenshot (path printed).
Usage: python3 Tests/ServeTests/browser_test.py BUILD_DIR [SCREENSHOT]
"""
import os, signal, subprocess, sys, tempfile, time
import numpy as np
import onnxruntime as ort
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, ".build/debug")
screenshot = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "out/serve/browser.png"))
onnx_path = os.path.join(root, "Fixtures/torch/lenet_avg.onnx")

# A 7, in the canvas's own 280x280 pixels: the top bar, then the diagonal, then a cross bar.
STROKES = [[(80, 70), (140, 68), (200, 66)], [(200, 66), (175, 130), (150, 190), (130, 235)], [(130, 150), (200, 150)]]

# torch's 100 digits as an IDX file (magic 0x0803: unsigned bytes, 3 dims; big-endian sizes).
digits = np.load(os.path.join(root, "Fixtures/torch/inputs.npy"))
examples = os.path.join(tempfile.mkdtemp(prefix="nn-serve-browser-"), "digits.idx")
with open(examples, "wb") as f:
    f.write(np.array([0x0803, 100, 28, 28], dtype=">u4").tobytes() + digits.tobytes())
session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])


def reference(picture):
    """Probabilities from onnxruntime: lenet_avg returns log-probabilities of picture / 255."""
    out = session.run(None, {session.get_inputs()[0].name: (picture.astype(np.float32) / 255).reshape(1, 1, 28, 28)})[0][0]
    return np.exp(out.astype(np.float64))


server = subprocess.Popen([os.path.join(build, "nn-serve"), "lenet=" + onnx_path, "--scale", "1/255", "--port", "0", "--examples", examples],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
driver = None
try:
    line = server.stdout.readline()
    assert "listening on http://" in line, f"nn-serve did not start: {line!r}"
    url = "http://" + line.strip().split("http://")[1] + "/"

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    # Headless needs no display; --no-sandbox because CI runs as root.
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=900,1000"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Debian's chromedriver, named so that Selenium Manager downloads nothing.
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    driver.set_script_timeout(30)
    driver.get(url)
    wait = WebDriverWait(driver, 30)
    wait.until(lambda d: d.execute_script("return document.getElementById('model').options.length") >= 1)
    assert driver.find_element(By.ID, "model").get_attribute("value") == "lenet"

    pad = driver.find_element(By.ID, "pad")
    rect = driver.execute_script("const r=arguments[0].getBoundingClientRect();return [r.width,r.height]", pad)
    sx, sy = rect[0] / 280, rect[1] / 280

    def offset(p):  # ActionChains offsets are from the element's centre, in CSS pixels.
        return round(p[0] * sx - rect[0] / 2), round(p[1] * sy - rect[1] / 2)

    for n, stroke in enumerate(STROKES, start=1):
        actions = ActionChains(driver, duration=20)
        actions.move_to_element_with_offset(pad, *offset(stroke[0])).click_and_hold()
        for a, b in zip(stroke, stroke[1:]):
            # Several moves per segment, as a hand makes them.
            for t in (0.25, 0.5, 0.75, 1.0):
                actions.move_to_element_with_offset(pad, *offset((a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)))
        actions.release().perform()
        wait.until(lambda d: d.execute_script("return Number(document.body.dataset.answered||0)") >= n,
                   f"no answer shown after stroke {n}")
        print(f"stroke {n}: the page says {driver.find_element(By.ID, 'answer').text!r}")

    page = driver.execute_script("""
        const s=document.getElementById('saw'),d=s.getContext('2d').getImageData(0,0,s.width,s.height).data,px=[];
        for(let i=0;i<d.length;i+=4)px.push(d[i]);
        const bars=[...document.querySelectorAll('#bars .bar')].map(b=>[b.children[0].textContent,b.children[2].textContent]);
        return {w:s.width,h:s.height,px:px,answer:document.getElementById('answer').textContent,
                cls:document.getElementById('answer').dataset.cls,bars:bars};""")
    assert (page["w"], page["h"]) == (28, 28), (page["w"], page["h"])
    picture = np.array(page["px"], dtype=np.uint8).reshape(28, 28)
    assert picture.max() > 128 and (picture > 64).sum() >= 20, "the picture the page shows is (nearly) empty"

    probs = reference(picture)
    expected = int(np.argmax(probs))
    print(f"onnxruntime on the page's 28x28 picture: class {expected} ({probs[expected]:.3f}); the page: {page['answer']!r}")
    assert page["answer"] == str(expected) and page["cls"] == str(expected), (page["answer"], page["cls"], expected)
    assert len(page["bars"]) == 10, page["bars"]
    for (name, shown), c in zip(page["bars"][:3], np.argsort(-probs)[:3]):
        assert name == str(c), (page["bars"][:3], np.argsort(-probs)[:3])
        assert abs(float(shown.rstrip(" %")) - 100 * probs[c]) <= 0.051, (name, shown, probs[c])

    # A test picture: the first button (torch's digits have no labels file: the first ten, in order).
    buttons = driver.find_elements(By.CSS_SELECTOR, "#exlist button")
    assert len(buttons) == 10, f"{len(buttons)} test pictures on the page"
    answered = int(driver.execute_script("return Number(document.body.dataset.answered||0)"))
    buttons[3].click()
    wait.until(lambda d: d.execute_script("return Number(document.body.dataset.answered||0)") > answered, "no answer for the test picture")
    shown = driver.find_element(By.ID, "answer").text
    expected = int(np.argmax(reference(digits[3])))
    print(f"test picture 3: onnxruntime says {expected}, the page {shown!r}")
    assert shown == str(expected), (shown, expected)
    saw = driver.execute_script("""const s=document.getElementById('saw'),d=s.getContext('2d').getImageData(0,0,28,28).data,px=[];
        for(let i=0;i<d.length;i+=4)px.push(d[i]);return px;""")
    assert (np.array(saw, dtype=np.uint8).reshape(28, 28) == digits[3]).all(), "the page does not show the test picture it sent"

    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, f"errors in the browser's console: {severe}"
    os.makedirs(os.path.dirname(screenshot), exist_ok=True)
    assert driver.save_screenshot(screenshot), screenshot
    print(f"screenshot: {screenshot}")
    driver.quit()
    driver = None
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0
    print("1 passed, 0 failed")
finally:
    if driver is not None:
        driver.quit()
    if server.poll() is None:
        server.kill()
